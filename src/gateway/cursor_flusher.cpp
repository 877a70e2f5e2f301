#include "gateway/cursor_flusher.hpp"

#include <algorithm>
#include <vector>

#include <boost/asio/post.hpp>

namespace herald::gateway {

CursorFlusher::CursorFlusher(store::InboxStore& store, transport::IoWorker& worker,
                             std::chrono::milliseconds interval, metrics::Counter* commits)
    : store_(store), worker_(worker), interval_(interval), commits_(commits) {}

void CursorFlusher::start() { schedule(); }

void CursorFlusher::schedule() {
  worker_.wheel().schedule_after(interval_, [this] { flush_round(pending_.size()); });
}

// A tick's batch goes out in chunks, one posted handler each: a thousand
// cursors are a few milliseconds of store writes, and in one piece they
// held back every delivery on this thread and every append waiting for the
// store's write lock. The round ends after what was pending at the tick,
// so acks arriving meanwhile cannot keep it going.
void CursorFlusher::flush_round(std::size_t left) {
  left -= std::min(left, write(kChunk));
  if (left == 0 || (pending_.empty() && marks_.empty())) {
    schedule();
    return;
  }
  boost::asio::post(worker_.context(), [this, left] { flush_round(left); });
}

void CursorFlusher::update(const std::string& user, const std::string& device, std::uint64_t cursor) {
  auto& c = pending_[{user, device}];
  c = std::max(c, cursor);
}

void CursorFlusher::mark_acked(const std::string& user, const std::string& device, std::uint64_t seq) {
  if (!store_.keeps_ack_marks()) return;
  if (marks_.size() >= kMaxMarks) marks_.pop_front();
  marks_.push_back({user, device, seq});
}

void CursorFlusher::flush() { write(pending_.size()); }

std::size_t CursorFlusher::write(std::size_t max) {
  if (!marks_.empty() && max > 0) {
    // Before the cursors: a mark the new cursor passes is dropped by them.
    const std::vector<store::AckMark> marks(std::make_move_iterator(marks_.begin()), std::make_move_iterator(marks_.end()));
    marks_.clear();
    store_.commit_ack_marks(marks);
  }
  if (pending_.empty() || max == 0) return 0;
  std::vector<store::CursorUpdate> batch;
  batch.reserve(std::min(max, pending_.size()));
  auto it = pending_.begin();
  for (; it != pending_.end() && batch.size() < max; ++it) batch.push_back({it->first.first, it->first.second, it->second});
  pending_.erase(pending_.begin(), it);
  store_.commit_cursors(batch);
  if (commits_ != nullptr) commits_->inc(batch.size());
  return batch.size();
}

}  // namespace herald::gateway
