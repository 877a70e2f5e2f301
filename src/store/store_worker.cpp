#include "store/store_worker.hpp"

#include <algorithm>
#include <chrono>

#include "core/clock.hpp"
#include "core/thread_name.hpp"

namespace herald::store {

StoreWorker::StoreWorker(InboxStore& store, std::size_t max_queued_messages, BatchObserver observer)
    : store_(store), max_queued_(max_queued_messages), observer_(std::move(observer)) {
  thread_ = std::thread([this] {
    set_thread_name("herald-store");
    run();
  });
}

StoreWorker::~StoreWorker() { stop(); }

bool StoreWorker::submit(std::vector<NewMessage> messages, Completion done) {
  Priority priority = Priority::low;
  for (const auto& m : messages) priority = std::min(priority, m.priority);
  // Share of the queue a request of this priority may fill.
  const double share = priority == Priority::high ? 1.0 : priority == Priority::normal ? 0.8 : 0.5;
  const auto limit = static_cast<std::size_t>(share * static_cast<double>(max_queued_));
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    if (queued_messages_ > 0 && queued_messages_ + messages.size() > limit) {
      stats_.shed[static_cast<std::size_t>(priority)] += 1;
      return false;
    }
    queued_messages_ += messages.size();
    queue_.push_back(Request{std::move(messages), std::move(done)});
  }
  cv_.notify_one();
  return true;
}

void StoreWorker::run() {
  std::vector<Request> batch;
  std::vector<NewMessage> all;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      // Everything queued now goes into one commit.
      while (!queue_.empty()) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    all.clear();
    for (auto& r : batch) {
      for (auto& m : r.messages) all.push_back(std::move(m));
    }
    const auto start = std::chrono::steady_clock::now();
    std::vector<AppendOutcome> outcomes = store_.append(all, unix_ms_now());
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::size_t pos = 0;
    for (auto& r : batch) {
      const std::size_t n = r.messages.size();
      std::vector<AppendOutcome> mine(outcomes.begin() + static_cast<std::ptrdiff_t>(pos),
                                      outcomes.begin() + static_cast<std::ptrdiff_t>(pos + n));
      pos += n;
      r.done(std::move(mine));
    }
    {
      std::lock_guard lock(mu_);
      queued_messages_ -= all.size();
      stats_.batches += 1;
      stats_.messages += all.size();
    }
    if (observer_) observer_(all.size(), seconds);
    batch.clear();
  }
}

void StoreWorker::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::size_t StoreWorker::queued_messages() const {
  std::lock_guard lock(mu_);
  return queued_messages_;
}

StoreWorkerStats StoreWorker::stats() const {
  std::lock_guard lock(mu_);
  auto s = stats_;
  s.queued_messages = queued_messages_;
  return s;
}

}  // namespace herald::store
