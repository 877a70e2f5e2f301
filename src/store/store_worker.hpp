#pragma once
// The one async boundary in front of the store (CONVENTIONS.md): I/O threads
// hand appends to this worker and never block on disk or Redis. Requests
// that arrive together are appended in one store call (group commit: one
// WAL write and, under sync=always, one fsync for all of them).
//
// Thread-safe submit(); completions run on the worker thread and must only
// post elsewhere. The queue is bounded, and sheds by priority as it fills
// (PROTOCOL.md 7): low messages are refused past half of it, normal ones
// past 80 %, high ones only when it is full. Each message is judged by its
// own priority, so a batch mixing them loses its low ones first. Work is
// committed in arrival order, so priority never reorders a user's inbox.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "store/inbox_store.hpp"

namespace herald::store {

struct StoreWorkerStats {
  std::uint64_t batches = 0;
  std::uint64_t messages = 0;
  std::size_t queued_messages = 0;
  std::uint64_t shed[3] = {0, 0, 0};  // refused messages by Priority (high, normal, low)
};

class StoreWorker {
 public:
  using Completion = std::function<void(std::vector<AppendOutcome>)>;
  // Called after each group commit with its size (metrics).
  using BatchObserver = std::function<void(std::size_t messages, double seconds)>;

  StoreWorker(InboxStore& store, std::size_t max_queued_messages, BatchObserver observer = {});
  ~StoreWorker();
  StoreWorker(const StoreWorker&) = delete;
  StoreWorker& operator=(const StoreWorker&) = delete;

  // Queues an append; done runs on the worker thread once the messages are
  // durable under the sync policy, with one outcome per message in order.
  // The messages the queue is too full for (by each one's priority) get
  // errc::overloaded there. False (done not called) when that is all of
  // them, or the worker stopped: the caller answers 429 with Retry-After.
  bool submit(std::vector<NewMessage> messages, Completion done);

  // Finishes what is queued, then stops the thread.
  void stop();
  std::size_t queued_messages() const;
  StoreWorkerStats stats() const;

 private:
  struct Request {
    std::vector<NewMessage> messages;  // the admitted ones
    Completion done;
    // Set when some were shed: the submitted count, and where each
    // admitted message stood among them.
    std::size_t submitted = 0;
    std::vector<std::size_t> positions;
  };
  void run();

  InboxStore& store_;
  const std::size_t max_queued_;
  BatchObserver observer_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request> queue_;
  std::size_t queued_messages_ = 0;
  bool stopping_ = false;
  StoreWorkerStats stats_;
  std::thread thread_;
};

}  // namespace herald::store
