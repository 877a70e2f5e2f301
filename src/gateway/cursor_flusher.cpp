#include "gateway/cursor_flusher.hpp"

#include <algorithm>
#include <vector>

namespace herald::gateway {

CursorFlusher::CursorFlusher(store::InboxStore& store, transport::IoWorker& worker,
                             std::chrono::milliseconds interval, metrics::Counter* commits)
    : store_(store), worker_(worker), interval_(interval), commits_(commits) {}

void CursorFlusher::start() { schedule(); }

void CursorFlusher::schedule() {
  worker_.wheel().schedule_after(interval_, [this] {
    flush();
    schedule();
  });
}

void CursorFlusher::update(const std::string& user, const std::string& device, std::uint64_t cursor) {
  auto& c = pending_[{user, device}];
  c = std::max(c, cursor);
}

void CursorFlusher::flush() {
  if (pending_.empty()) return;
  std::vector<store::CursorUpdate> batch;
  batch.reserve(pending_.size());
  for (auto& [key, cursor] : pending_) batch.push_back({key.first, key.second, cursor});
  pending_.clear();
  store_.commit_cursors(batch);
  if (commits_ != nullptr) commits_->inc(batch.size());
}

}  // namespace herald::gateway
