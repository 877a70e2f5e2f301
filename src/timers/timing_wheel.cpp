#include "timers/timing_wheel.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace herald::timers {

TimingWheel::TimingWheel(std::chrono::milliseconds tick, std::size_t slots, Clock::time_point start)
    : tick_(std::chrono::duration_cast<Clock::duration>(tick)),
      tick_ms_(tick),
      slots_(slots),
      mask_(slots - 1),
      start_(start),
      now_(start) {
  if (tick.count() <= 0) throw std::invalid_argument("timing wheel: tick must be positive");
  // 2^30 keeps slot-head indices clear of kHeadBit with room for the two extra lists.
  if (slots == 0 || (slots & (slots - 1)) != 0 || slots > (std::size_t{1} << 30)) {
    throw std::invalid_argument("timing wheel: slots must be a power of two in [1, 2^30]");
  }
  heads_.resize(slots_ + 2);
  for (std::size_t i = 0; i < heads_.size(); ++i) init_list(kHeadBit | static_cast<std::uint32_t>(i));
}

// ---------------------------------------------------------------- scheduling

TimerId TimingWheel::schedule(Clock::time_point when, Callback cb) {
  if (!cb) throw std::invalid_argument("timing wheel: empty callback");
  const std::uint32_t i = allocate_node();
  Node& n = node_at(i);
  n.cb = std::move(cb);
  if (when <= now_) {
    // Already due: it runs at the next advance(). A separate list (rather than
    // the slot of the current tick) keeps a 0-delay timer scheduled from a
    // callback out of the advance() that is running it, so a timer that
    // re-arms itself with no delay cannot loop forever.
    n.deadline_tick = current_tick_;
    n.where = Where::due;
    push_back(due_head(), i);
  } else {
    // when > now_ implies ceil_tick(when) > current_tick_: the slot is ahead.
    n.deadline_tick = ceil_tick(when);
    n.where = Where::wheel;
    push_back(slot_head(n.deadline_tick), i);
    ++wheel_count_;
  }
  ++pending_;
  return TimerId{i, n.generation};
}

TimerId TimingWheel::schedule_after(std::chrono::milliseconds delay, Callback cb) {
  if (delay.count() <= 0) return schedule(now_, std::move(cb));
  // Saturate instead of overflowing the clock's nanosecond representation.
  const auto room = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now_);
  const Clock::time_point when = delay >= room ? Clock::time_point::max() : now_ + delay;
  return schedule(when, std::move(cb));
}

bool TimingWheel::cancel(TimerId id) {
  if (!id.valid() || id.slot >= node_count_) return false;
  Node& n = node_at(id.slot);
  if (n.generation != id.generation || n.where == Where::free) return false;
  if (n.where == Where::wheel) --wheel_count_;
  unlink(id.slot);
  // Destroyed after the wheel is consistent again: the captures' destructors
  // may call back into the wheel.
  Callback doomed = std::move(n.cb);
  release_node(id.slot);
  --pending_;
  return true;
}

// ------------------------------------------------------------------- advance

std::size_t TimingWheel::advance(Clock::time_point now) {
  if (in_advance_) throw std::logic_error("timing wheel: advance() called from a timer callback");
  const Clock::time_point new_now = std::max(now, now_);
  const std::int64_t from = current_tick_;
  const std::int64_t to = floor_tick(new_now);
  // Collecting first: the only thing that can throw (scratch space) then
  // throws before the wheel has changed.
  if (to > from && wheel_count_ > 0) {
    if (static_cast<std::uint64_t>(to - from) < slots_) {
      collect_ticks(from, to);
    } else {
      collect_all_revolutions(to);
    }
  }
  // Due timers are older than anything collected from the wheel: they go first.
  splice_front(firing_head(), due_head());
  // Set before any callback runs: timers they schedule for a time up to now_
  // go to the due list (next advance), later ones to slots ahead of `to`.
  now_ = new_now;
  current_tick_ = to;
  in_advance_ = true;
  const std::size_t fired = run_firing_list();
  in_advance_ = false;
  return fired;
}

void TimingWheel::collect_ticks(std::int64_t from, std::int64_t to) {
  // Fewer ticks than slots: each slot is visited at most once, in tick order.
  // A slot visited for tick t can only hold due timers with deadline t (an
  // earlier revolution's would have been collected one revolution ago, a later
  // one is > to), so appending slot by slot yields deadline order.
  const std::uint32_t firing = firing_head();
  for (std::int64_t t = from + 1; t <= to && wheel_count_ > 0; ++t) {
    const std::uint32_t head = slot_head(t);
    for (std::uint32_t i = link(head).next; i != head;) {
      Node& n = node_at(i);
      const std::uint32_t next = n.link.next;
      if (n.deadline_tick <= t) {
        unlink(i);
        n.where = Where::due;
        push_back(firing, i);
        --wheel_count_;
      }
      i = next;
    }
  }
}

void TimingWheel::collect_all_revolutions(std::int64_t to) {
  // The gap spans a whole revolution or more (a stalled loop, a suspended
  // machine). Stepping tick by tick would cost O(gap) and revisit every slot
  // once per revolution; instead visit each slot once, O(slots + timers on the
  // wheel), and sort what is due. Timers of equal deadline share a slot and
  // are met in list (schedule) order; sorting by (deadline, order met) keeps
  // them FIFO. std::sort rather than std::stable_sort: the latter allocates a
  // buffer on every call.
  scratch_.clear();
  scratch_.reserve(wheel_count_);
  for (std::size_t s = 0; s < slots_ && scratch_.size() < wheel_count_; ++s) {
    const std::uint32_t head = kHeadBit | static_cast<std::uint32_t>(s);
    for (std::uint32_t i = link(head).next; i != head; i = node_at(i).link.next) {
      if (node_at(i).deadline_tick <= to) {
        scratch_.push_back(Due{node_at(i).deadline_tick, static_cast<std::uint32_t>(scratch_.size()), i});
      }
    }
  }
  std::sort(scratch_.begin(), scratch_.end(), [](const Due& a, const Due& b) {
    return a.deadline_tick != b.deadline_tick ? a.deadline_tick < b.deadline_tick : a.order < b.order;
  });
  const std::uint32_t firing = firing_head();
  for (const Due& d : scratch_) {
    unlink(d.node);
    node_at(d.node).where = Where::due;
    push_back(firing, d.node);
  }
  wheel_count_ -= scratch_.size();
}

std::size_t TimingWheel::run_firing_list() {
  const std::uint32_t firing = firing_head();
  std::size_t fired = 0;
  try {
    // Pop one at a time instead of iterating: a callback may cancel any timer
    // still on the firing list, which unlinks it from under us.
    while (!list_empty(firing)) {
      const std::uint32_t i = link(firing).next;
      unlink(i);
      // Moved out and the node released before the call: the callback may
      // schedule (reusing this node, growing the slab) and cancel freely, and
      // cancelling its own now stale id returns false.
      Callback cb = std::move(node_at(i).cb);
      release_node(i);
      --pending_;
      cb();
      ++fired;
    }
  } catch (...) {
    // The timers not yet run stay due, ahead of those the callbacks added.
    splice_front(due_head(), firing);
    in_advance_ = false;
    throw;
  }
  return fired;
}

// --------------------------------------------------------------------- ticks

std::int64_t TimingWheel::ceil_tick(Clock::time_point when) const {
  if (when <= start_) return 0;
  const auto elapsed = (when - start_).count();
  const auto per_tick = tick_.count();
  return elapsed / per_tick + (elapsed % per_tick != 0 ? 1 : 0);
}

std::int64_t TimingWheel::floor_tick(Clock::time_point now) const {
  if (now <= start_) return 0;
  return (now - start_).count() / tick_.count();
}

// ------------------------------------------------------------- intrusive lists

void TimingWheel::init_list(std::uint32_t head) { link(head) = Link{head, head}; }

void TimingWheel::push_back(std::uint32_t head, std::uint32_t node) {
  Link& h = link(head);
  const std::uint32_t last = h.prev;
  link(last).next = node;
  node_at(node).link = Link{last, head};
  h.prev = node;
}

void TimingWheel::unlink(std::uint32_t node) {
  const Link l = node_at(node).link;
  link(l.prev).next = l.next;
  link(l.next).prev = l.prev;
}

void TimingWheel::splice_back(std::uint32_t dst, std::uint32_t src) {
  if (list_empty(src)) return;
  const std::uint32_t first = link(src).next;
  const std::uint32_t last = link(src).prev;
  const std::uint32_t dst_last = link(dst).prev;
  link(dst_last).next = first;
  link(first).prev = dst_last;
  link(last).next = dst;
  link(dst).prev = last;
  init_list(src);
}

void TimingWheel::splice_front(std::uint32_t dst, std::uint32_t src) {
  if (list_empty(src)) return;
  const std::uint32_t first = link(src).next;
  const std::uint32_t last = link(src).prev;
  const std::uint32_t dst_first = link(dst).next;
  link(dst).next = first;
  link(first).prev = dst;
  link(last).next = dst_first;
  link(dst_first).prev = last;
  init_list(src);
}

// ---------------------------------------------------------------------- slab

std::uint32_t TimingWheel::allocate_node() {
  if (free_head_ != kNil) {
    const std::uint32_t i = free_head_;
    free_head_ = node_at(i).link.next;
    return i;
  }
  if (node_count_ >= kHeadBit) throw std::length_error("timing wheel: too many pending timers");
  if ((node_count_ & (kPageNodes - 1)) == 0) pages_.push_back(std::make_unique<Node[]>(kPageNodes));
  const std::uint32_t i = node_count_++;
  node_at(i) = Node{Callback{}, 0, Link{kNil, kNil}, 1, Where::free};
  return i;
}

void TimingWheel::release_node(std::uint32_t node) {
  Node& n = node_at(node);
  n.cb.reset();
  n.where = Where::free;
  // 0 marks "no timer" in TimerId. A stale id could only match again after
  // 2^32 reuses of this very node while it is still held.
  if (++n.generation == 0) n.generation = 1;
  n.link.next = free_head_;
  free_head_ = node;
}

std::size_t TimingWheel::memory_bytes() const {
  return sizeof(*this) + pages_.size() * kPageNodes * sizeof(Node) + pages_.capacity() * sizeof(pages_[0]) +
         heads_.capacity() * sizeof(Link) +
         scratch_.capacity() * sizeof(Due);
}

}  // namespace herald::timers
