#pragma once
// The schedule of delayed messages (PROTOCOL.md 7 `deliver_at`): publishes
// held until due, then appended through the normal publish path, where they
// get their seq. Split off from InboxStore (CONVENTIONS.md "Interfaces and
// backends"); a backend implements both, and the schedule survives restarts
// on the backends whose inboxes do (PROTOCOL.md 10).
//
// The schedule only holds messages: it never appends them. The caller reads
// due(), appends what it got (append dedups by (user, id)), then remove()s
// them. A crash between the append and the remove appends them again after
// the restart, as duplicates: no double delivery within the dedup window.
//
// Threading: every method may be called from any thread concurrently;
// backends synchronise internally. Methods block on I/O.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "store/message.hpp"

namespace herald::store {

// One million scheduled messages of a few hundred bytes is a few hundred MB
// of disk at most; beyond it schedule() answers full (429) rather than grow.
inline constexpr std::size_t kDefaultMaxScheduled = 1'000'000;

enum class ScheduleResult {
  scheduled,    // held until due, durable under the sync policy
  duplicate,    // (user, id) already scheduled, or appended within the dedup window
  full,         // max_scheduled reached: nothing held
  unavailable,  // the write failed: nothing held
};

struct ScheduledMessage {
  NewMessage message;                // as given to schedule()
  std::int64_t deliver_at_ms = 0;    // due at (unix ms)
  std::uint64_t schedule_id = 0;     // unique within the store, for remove()
};

class ScheduleStore {
 public:
  virtual ~ScheduleStore() = default;

  // Holds m until deliver_at_ms. Duplicate (PROTOCOL.md 10) when the same
  // (user, id) is scheduled, or was appended to the user's inbox within the
  // dedup window as judged at m.accepted_at_ms; full when max_scheduled
  // messages are held. Atomic: scheduled means the message, its (user, id)
  // dedup entry and the schedule id are all written; any other result holds
  // nothing. When it returns scheduled, the message is durable under the
  // backend's sync policy.
  virtual ScheduleResult schedule(const NewMessage& m, std::int64_t deliver_at_ms) = 0;

  // The earliest-due messages with deliver_at_ms <= now_ms, at most limit,
  // ascending by (deliver_at_ms, schedule_id). Removes nothing: the same
  // messages come back on every call until remove()d, so the caller keeps
  // track of those it is already appending.
  virtual std::vector<ScheduledMessage> due(std::int64_t now_ms, std::size_t limit) = 0;

  // Drops the given messages and their dedup entries, once the caller has
  // appended them (from then on the inbox's dedup answers for their ids).
  // Ids not scheduled are ignored (idempotent). Not synced on its own: a
  // crash may bring removed messages back, to be appended again as
  // duplicates.
  virtual void remove(std::span<const std::uint64_t> schedule_ids) = 0;

  // How many messages are held, due or not.
  virtual std::size_t scheduled_count() = 0;
};

}  // namespace herald::store
