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
  constexpr std::size_t kClasses = 3;  // Priority: high, normal, low
  std::size_t count[kClasses] = {0, 0, 0};
  for (const auto& m : messages) ++count[static_cast<std::size_t>(m.priority)];
  Request request{{}, std::move(done), 0, {}};
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    // Share of the queue each priority may fill, the more important
    // admitted first. An empty queue takes anything (a batch larger than
    // a share must still be able to go).
    bool admit[kClasses] = {false, false, false};
    std::size_t admitted = 0;
    for (std::size_t c = 0; c < kClasses; ++c) {
      if (count[c] == 0) continue;
      const double share = c == 0 ? 1.0 : c == 1 ? 0.8 : 0.5;
      const auto limit = static_cast<std::size_t>(share * static_cast<double>(max_queued_));
      const std::size_t before = queued_messages_ + admitted;
      admit[c] = before == 0 || before + count[c] <= limit;
      if (admit[c]) admitted += count[c];
      else stats_.shed[c] += count[c];
    }
    if (admitted == 0) return false;
    if (admitted == messages.size()) {
      request.messages = std::move(messages);
    } else {
      request.submitted = messages.size();
      request.messages.reserve(admitted);
      request.positions.reserve(admitted);
      for (std::size_t i = 0; i < messages.size(); ++i) {
        if (!admit[static_cast<std::size_t>(messages[i].priority)]) continue;
        request.positions.push_back(i);
        request.messages.push_back(std::move(messages[i]));
      }
    }
    queued_messages_ += admitted;
    queue_.push_back(std::move(request));
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
      std::vector<AppendOutcome> mine;
      if (r.positions.empty()) {
        mine.assign(outcomes.begin() + static_cast<std::ptrdiff_t>(pos),
                    outcomes.begin() + static_cast<std::ptrdiff_t>(pos + n));
      } else {
        mine.assign(r.submitted, AppendOutcome{errc::overloaded});
        for (std::size_t k = 0; k < n; ++k) mine[r.positions[k]] = std::move(outcomes[pos + k]);
      }
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
