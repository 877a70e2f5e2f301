#pragma once
// Hashed timing wheel: every per-connection timer of one I/O thread in one structure.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "timers/inplace_callback.hpp"

namespace herald::timers {

// Handle of a scheduled timer: node index plus the node's generation at
// scheduling time. A default TimerId means "no timer"; cancelling it is a no-op.
struct TimerId {
  std::uint32_t slot = 0;        // index of the timer node in the wheel's slab
  std::uint32_t generation = 0;  // 0 is never issued, so a default id is invalid
  bool valid() const { return generation != 0; }
  friend bool operator==(const TimerId&, const TimerId&) = default;
};

// Holds the handshake, heartbeat, idle and ack timers of all connections of
// one I/O thread, so that hundreds of thousands of connections cost one
// periodic asio timer (which calls advance()) instead of one OS timer object
// each.
//
// Owns the timer nodes and their callbacks. Single-threaded: every call,
// including from inside a callback, comes from the owning I/O thread; there is
// no lock. Knows nothing of connections or asio: time comes in through
// advance(), so tests drive it with explicit time points.
//
// Shape: `slots` doubly linked lists (one per tick modulo the wheel size) of
// nodes kept in a slab (fixed-size pages plus a free list) and linked by
// index, so schedule and cancel are O(1) and allocate nothing once the slab
// has grown to the peak number of pending timers. The slab grows a page at a
// time: no doubled capacity held for good, no copy of every node when it
// grows (at 100k connections a vector would move 6 MB on one I/O thread). A node stores its absolute deadline tick;
// a slot holds the timers of every revolution ("rounds" = deadline / slots),
// and a visit fires only those whose deadline has come.
//
// Firing order: timers scheduled for a time at or before now() fire first, in
// schedule order; then by deadline tick; within one tick in schedule order.
// Precision is one tick: a deadline is rounded up to the next tick boundary,
// never down.
class TimingWheel {
 public:
  using Clock = std::chrono::steady_clock;
  using Callback = InplaceCallback;

  // tick: resolution; 10 ms is far below any protocol timeout (heartbeats are
  //   seconds) and keeps the driving asio timer at 100 wake-ups per second.
  // slots: wheel size, a power of two; 4096 x 10 ms = 41 s per revolution
  //   covers handshake, heartbeat and ack timeouts without rounds, and the
  //   slot heads cost 32 KiB.
  // start: time of tick 0.
  // Throws std::invalid_argument for a non-positive tick or a slot count that
  // is not a power of two in [1, 2^30].
  explicit TimingWheel(std::chrono::milliseconds tick = std::chrono::milliseconds(10),
                       std::size_t slots = 4096, Clock::time_point start = Clock::now());

  TimingWheel(const TimingWheel&) = delete;
  TimingWheel& operator=(const TimingWheel&) = delete;

  // Runs cb at the first advance() whose now >= when rounded up to the tick.
  // A `when` at or before now() fires at the next advance(), also when
  // scheduled from a callback (never within the running advance()).
  // Throws std::invalid_argument for an empty cb; std::length_error past 2^31
  // pending timers; std::bad_alloc when the slab cannot grow.
  TimerId schedule(Clock::time_point when, Callback cb);
  // Relative to now() (the last advance), not to the wall clock: callbacks
  // re-arming themselves get exact periods. A non-positive delay fires at the
  // next advance().
  TimerId schedule_after(std::chrono::milliseconds delay, Callback cb);

  // O(1). True if the timer was pending and is now cancelled (its callback is
  // destroyed without running). False for a fired, already cancelled or
  // invalid id; an id whose node has been reused by a later timer is detected
  // by its generation and left alone.
  bool cancel(TimerId id);

  // Moves the wheel to now and runs every timer due by then (order: see the
  // class comment); returns how many ran. A now earlier than now() is taken as
  // now() (steady time does not go back). now() is already the new time while
  // callbacks run. Callbacks may schedule and cancel any timer, themselves
  // included; what they schedule for a time at or before now() runs at the
  // next advance(). Cost: the slots of the elapsed ticks, capped at one visit
  // of every slot however long the gap, plus the timers fired. Must not be
  // called from a callback (std::logic_error). If a callback throws, the
  // exception propagates and the timers not yet run stay due for the next
  // advance().
  std::size_t advance(Clock::time_point now);

  // Timers scheduled and neither fired nor cancelled.
  std::size_t pending() const { return pending_; }
  // Time of the last advance (the start time before the first).
  Clock::time_point now() const { return now_; }
  std::chrono::milliseconds tick() const { return tick_ms_; }
  // Memory of one timer node in the slab (callback with inline captures,
  // deadline, links, generation); a timer whose captures exceed
  // Callback::inline_capacity adds one heap block.
  static constexpr std::size_t bytes_per_timer();
  // Everything the wheel holds: slab capacity, slot heads, scratch space.
  std::size_t memory_bytes() const;

 private:
  // Where a node is: unused, on a slot list, or on the due/firing list (runs
  // at this or the next advance). Lets cancel() keep wheel_count_ exact.
  enum class Where : std::uint8_t { free, wheel, due };

  // Links of a circular list. Indices with kHeadBit set name a list head
  // (sentinel) in heads_, so unlinking never needs to know which list it is.
  struct Link {
    std::uint32_t prev;
    std::uint32_t next;
  };

  struct Node {
    Callback cb;                  // empty unless pending
    std::int64_t deadline_tick;   // absolute tick; slot = deadline & mask, rounds = deadline / slots
    Link link;                    // in a slot, due or firing list; link.next chains the free list
    std::uint32_t generation;     // bumped when the node is released, so old ids go stale
    Where where;                  // which kind of list the node is on
  };

  // A timer found due by collect_all_revolutions(), to be sorted.
  struct Due {
    std::int64_t deadline_tick;
    std::uint32_t order;  // position in the slot walk: FIFO among equal deadlines
    std::uint32_t node;
  };

  static constexpr std::uint32_t kHeadBit = 0x8000'0000u;
  static constexpr std::uint32_t kNil = 0xFFFF'FFFFu;  // end of the free list

  // 256 nodes (16 KiB) per page.
  static constexpr std::uint32_t kPageShift = 8;
  static constexpr std::uint32_t kPageNodes = 1u << kPageShift;

  Node& node_at(std::uint32_t i) { return pages_[i >> kPageShift][i & (kPageNodes - 1)]; }
  Link& link(std::uint32_t i) { return (i & kHeadBit) != 0 ? heads_[i & ~kHeadBit] : node_at(i).link; }
  std::uint32_t slot_head(std::int64_t tick) const {
    return kHeadBit | static_cast<std::uint32_t>(static_cast<std::uint64_t>(tick) & mask_);
  }
  std::uint32_t due_head() const { return kHeadBit | static_cast<std::uint32_t>(slots_); }
  std::uint32_t firing_head() const { return kHeadBit | static_cast<std::uint32_t>(slots_ + 1); }

  void init_list(std::uint32_t head);
  bool list_empty(std::uint32_t head) { return link(head).next == head; }
  void push_back(std::uint32_t head, std::uint32_t node);
  void unlink(std::uint32_t node);
  // Moves all of src's nodes before dst's first node (front) or after its last.
  void splice_front(std::uint32_t dst, std::uint32_t src);
  void splice_back(std::uint32_t dst, std::uint32_t src);

  std::uint32_t allocate_node();
  void release_node(std::uint32_t node);

  std::int64_t ceil_tick(Clock::time_point when) const;
  std::int64_t floor_tick(Clock::time_point now) const;

  // Moves the timers due by tick `to` from the wheel onto the firing list.
  void collect_ticks(std::int64_t from, std::int64_t to);
  void collect_all_revolutions(std::int64_t to);
  std::size_t run_firing_list();

  Clock::duration tick_;                  // resolution in the clock's own unit
  std::chrono::milliseconds tick_ms_;     // resolution as configured
  std::size_t slots_;                     // wheel size, a power of two
  std::uint64_t mask_;                    // slots_ - 1
  Clock::time_point start_;               // time of tick 0
  Clock::time_point now_;                 // time of the last advance
  std::int64_t current_tick_ = 0;         // every deadline <= this has fired or is due/firing
  std::vector<std::unique_ptr<Node[]>> pages_;  // the slab; nodes never move
  std::uint32_t node_count_ = 0;          // nodes ever used (the slab's high-water mark)
  std::vector<Link> heads_;               // slots_ slot lists, then the due and firing lists
  std::vector<Due> scratch_;              // reused by collect_all_revolutions(): no allocation per gap
  std::uint32_t free_head_ = kNil;        // free list through Node::link.next
  std::size_t pending_ = 0;               // scheduled, not yet fired or cancelled
  std::size_t wheel_count_ = 0;           // pending nodes on slot lists (lets advance() skip an empty wheel)
  bool in_advance_ = false;               // guards against advance() from a callback
};

constexpr std::size_t TimingWheel::bytes_per_timer() { return sizeof(Node); }

}  // namespace herald::timers
