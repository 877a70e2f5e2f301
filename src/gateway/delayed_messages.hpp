#pragma once
// Messages published with a future deliver_at (PROTOCOL.md 7): held in the
// store's schedule until due, then appended through the normal publish path
// (they get their seq then). Dedup covers them while scheduled (PROTOCOL.md
// 10); the schedule answers it. On the rocksdb store the schedule survives
// restarts; on the memory store it goes with the process.
//
// Owns only the ids of the scheduled messages being appended right now (at
// most one due() batch), so that none is released twice at once. Knows
// nothing of the backend, nor of timing: the server's housekeeper calls
// release_due() every 20 ms.
//
// Threading: thread-safe. schedule() runs on an HTTP I/O thread and blocks
// on the store's write (an fsync under sync=always, a wait for the WAL sync
// under batch); acceptable for now, until scheduling goes through the store
// worker like appends. release_due() from one thread at a time; its
// completions run on the store worker's thread.
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_set>

#include "gateway/publish_service.hpp"
#include "store/schedule_store.hpp"

namespace herald::gateway {

class DelayedMessages {
 public:
  enum class Result { scheduled, duplicate, full, unavailable };

  DelayedMessages(PublishService& publisher, store::ScheduleStore& schedule)
      : publisher_(publisher), schedule_(schedule) {}

  // Holds the message until deliver_at_ms; when scheduled, it is durable
  // under the sync policy. full: the store's bound is reached (429);
  // unavailable: the store could not write it (503).
  Result schedule(const store::NewMessage& message, std::int64_t deliver_at_ms);
  // Appends up to kReleaseBatch due messages (accepted_at_ms = now_ms) and
  // removes them from the schedule once the append answered. Messages the
  // append refused (queue full, store unavailable) stay for the next call.
  void release_due(std::int64_t now_ms);
  // Messages held, due or not.
  std::size_t pending() const;

  // One group commit's worth per pass: 1000 every 20 ms outruns any
  // realistic schedule while keeping a pass short.
  static constexpr std::size_t kReleaseBatch = 1000;

 private:
  PublishService& publisher_;
  store::ScheduleStore& schedule_;
  mutable std::mutex mu_;
  std::unordered_set<std::uint64_t> inflight_;  // schedule ids being appended; <= kReleaseBatch
};

}  // namespace herald::gateway
