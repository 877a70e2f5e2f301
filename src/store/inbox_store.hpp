#pragma once
// The one interface to users' inboxes (ARCHITECTURE.md "store"). Backends:
// memory (tests, ephemeral runs), rocksdb (embedded default), redis (nodes
// sharing Redis). Every backend passes the same contract suite
// (tests/store_contract_test.cpp).
//
// Threading: every method may be called from any thread concurrently;
// backends synchronise internally (per user where they can). Methods block
// on I/O: callers on I/O threads go through the StoreWorker for writes.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/errc.hpp"
#include "store/message.hpp"

namespace herald::store {

// Retention and dedup rules shared by all backends (PROTOCOL.md 1, 7).
struct StorePolicy {
  std::uint64_t retention_max_messages = 10000;
  std::int64_t retention_ttl_ms = 259200000;
  std::int64_t dedup_window_ms = 86400000;
};

using AppendOutcome = std::variant<AppendResult, errc>;

// One slice of the backlog census (the herald_backlog_messages gauge).
struct BacklogSlice {
  std::uint64_t messages = 0;  // backlog of the users scanned in this slice
  std::size_t users = 0;       // users scanned
  std::size_t users_behind = 0;  // of those, users with a backlog
  std::string position;        // where the next slice starts; empty: the pass is complete
};

// Backlog of one inbox: retained messages that its slowest known device has
// not acked (all of them for a user without a device yet). From counts, not
// a scan, so an upper bound when collapse left gaps below the head.
inline std::uint64_t inbox_backlog(std::uint64_t retained, std::uint64_t head_seq,
                                   std::optional<std::uint64_t> min_cursor) {
  if (!min_cursor) return retained;
  const std::uint64_t behind = head_seq > *min_cursor ? head_seq - *min_cursor : 0;
  return behind < retained ? behind : retained;
}

// Whether a device acked a message above its cursor (a gap before it) on a
// live or earlier connection to this node: the gateway's attempt ledger.
using AckedAboveCursor = std::function<bool(std::string_view user, std::string_view device, std::uint64_t seq)>;

class InboxStore {
 public:
  virtual ~InboxStore() = default;

  // Set once before use. A message that leaves by TTL or trim is a dead
  // letter only if some device had not acked it (PROTOCOL.md 10): acks
  // above a device's cursor count too, as far as this node knows them.
  void set_acked_above_cursor(AckedAboveCursor f) { acked_above_cursor_ = std::move(f); }

  // Appends each message to its user's inbox, assigning the next seq. Per
  // item atomic: dedup by (user, id) within the window (returns the original
  // seq, duplicate=true), collapse (an older message with the same
  // collapse_key leaves the inbox, not as a dead letter), retention trim
  // (oldest beyond the cap leave; unacked ones become dead letters). When this
  // returns, the items are durable under the backend's sync policy. Results
  // are in input order; a failed item is an errc (store_unavailable).
  virtual std::vector<AppendOutcome> append(std::span<const NewMessage> batch,
                                            std::int64_t now_ms) = 0;

  // Retained, unexpired messages with seq > after_seq, ascending, at most limit.
  virtual std::vector<MessagePtr> read_after(std::string_view user, std::uint64_t after_seq,
                                             std::size_t limit, std::int64_t now_ms) = 0;

  // One retained message (nullptr: not retained).
  virtual MessagePtr get(std::string_view user, std::uint64_t seq) = 0;

  // Epoch, head seq and loss mark of a user's inbox; creates the epoch on
  // first use. The memory backend starts a new epoch at every start.
  virtual InboxState state(std::string_view user) = 0;

  // head_seq of each user, in order (0 for an inbox never used). For the
  // catch-up pass of several nodes; a backend may answer all in one round
  // trip. Unreachable store: zeros.
  virtual std::vector<std::uint64_t> head_seqs(std::span<const std::string> users) {
    std::vector<std::uint64_t> out;
    out.reserve(users.size());
    for (const auto& u : users) out.push_back(state(u).head_seq);
    return out;
  }

  // Stored cursor of a device (nullopt: device never seen).
  virtual std::optional<std::uint64_t> cursor(std::string_view user, std::string_view device) = 0;
  // Every known device of the user with its cursor.
  virtual std::vector<DeviceCursor> cursors(std::string_view user) = 0;
  // Registers a device (cursor kept if known) so that it is "known" from its
  // first welcome on (PROTOCOL.md 10). Its lost mark starts at the inbox's
  // max_lost_seq: what left before the device existed, it never acked.
  virtual void register_device(std::string_view user, std::string_view device,
                               std::uint64_t initial_cursor) = 0;
  // The device's lost mark: the highest seq that left the inbox (expiry,
  // trim) before this device acked it. Kept apart from the cursor, which
  // passes such a gap: a client resuming below its cursor is told
  // recovered:false only when a message it never acked is gone
  // (PROTOCOL.md 10). nullopt: none recorded (a device registered by a
  // version that kept no marks).
  virtual std::optional<std::uint64_t> lost_mark(std::string_view user, std::string_view device) = 0;
  // Raises cursors; a cursor never moves backwards. Losing an update on a
  // crash causes a redelivery, never a loss.
  virtual void commit_cursors(std::span<const CursorUpdate> updates) = 0;

  // Acks above a gap. Most stores ask the node (set_acked_above_cursor)
  // when they decide a dead letter; a store that decides elsewhere (redis:
  // inside a Lua script, maybe on another node) keeps the marks itself, until
  // the device's cursor passes them or the message leaves.
  virtual bool keeps_ack_marks() const { return false; }
  virtual void commit_ack_marks(std::span<const AckMark> marks) { (void)marks; }

  // Removes up to `budget` expired messages (moving unacked ones to the dead
  // letter log) and returns how many it removed. Called in bounded slices.
  virtual std::size_t expire(std::int64_t now_ms, std::size_t budget) = 0;

  // The dead-letter log, ids ascending, after the given id.
  virtual std::vector<DeadLetter> dead_letters(std::uint64_t after_id, std::size_t limit) = 0;
  virtual std::uint64_t dead_letter_count() = 0;
  // The dead letter of the user's message seq while the log holds it.
  virtual std::optional<DeadLetter> dead_letter(std::string_view user, std::uint64_t seq) = 0;

  // Scans a bounded slice of inboxes (about max_users) for the backlog
  // census, starting at position (opaque; empty: from the first inbox).
  // Runs in the background; may read slightly stale cursors.
  virtual BacklogSlice scan_backlog(std::string_view position, std::size_t max_users) = 0;

  // True when the backend can serve (readiness).
  virtual bool healthy() = 0;

  // Gives back memory held for inboxes nobody used for a while (state a
  // later use reloads from disk). Called every few tens of ms from one
  // background thread; each call does a bounded slice of the work.
  virtual void release_idle(std::int64_t now_ms) { (void)now_ms; }

 protected:
  // The device acked seq: its cursor passed it, or it acked it above a gap.
  bool device_acked(std::string_view user, std::string_view device, std::uint64_t cursor,
                    std::uint64_t seq) const {
    return seq <= cursor || (acked_above_cursor_ && acked_above_cursor_(user, device, seq));
  }

 private:
  AckedAboveCursor acked_above_cursor_;
};

}  // namespace herald::store
