#pragma once
// InboxStore and ScheduleStore on Redis, standalone or Redis Cluster: the
// backend for several Herald nodes sharing their inboxes (ARCHITECTURE.md
// "Several nodes"). Layout, scripts and failure modes: docs/cluster.md.
//
// Every change to one user's inbox is one Lua script over that user's keys
// (one hash tag, one slot), so dedup, seq, collapse and trim of one publish
// happen atomically on the Redis side. A batch of publishes is pipelined:
// one round trip per node for the whole batch; a second one only when the
// batch made dead letters or moved a user's earliest expiry down (the
// global dead-letter log and expiry index live in other slots).
//
// Owns a RedisLink (connection pool, slot map). Thread-safe: every method
// may be called from any thread at once, each call on its own connection.
//
// Redis unreachable: append answers store_unavailable per item, healthy()
// is false, reads answer empty, cursor writes are dropped (a redelivery, not
// a loss); the link reconnects with backoff. A reply that never came leaves
// the item unknown to the caller: a publisher's retry with the same id is
// deduplicated. Durability is Redis' own: append returns once Redis replied,
// which under `appendonly yes` + `appendfsync always` is after its fsync.
#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "store/inbox_store.hpp"
#include "store/redis/redis_endpoints.hpp"
#include "store/redis/redis_keys.hpp"
#include "store/redis/redis_link.hpp"
#include "store/schedule_store.hpp"

namespace herald::store {

struct RedisStoreOptions {
  std::string key_prefix = "herald:";  // several deployments (or tests) may share one Redis
  std::size_t max_dead_letters = 1'000'000;  // as the rocksdb store: a bounded log, oldest dropped
  std::size_t max_scheduled = kDefaultMaxScheduled;
  RedisLinkOptions link;
};

class RedisInboxStore final : public InboxStore, public ScheduleStore {
 public:
  // Connects lazily: a Redis that is down at start makes the store
  // unhealthy until it is up, not the server fail. Throws
  // std::invalid_argument for a bad key prefix.
  RedisInboxStore(RedisEndpoints endpoints, StorePolicy policy, RedisStoreOptions options = {});
  ~RedisInboxStore() override;

  std::vector<AppendOutcome> append(std::span<const NewMessage> batch, std::int64_t now_ms) override;
  std::vector<MessagePtr> read_after(std::string_view user, std::uint64_t after_seq,
                                     std::size_t limit, std::int64_t now_ms) override;
  MessagePtr get(std::string_view user, std::uint64_t seq) override;
  // Unreachable Redis: an empty epoch (callers check healthy() first).
  InboxState state(std::string_view user) override;
  // One pipeline of HGETs (no epoch is created).
  std::vector<std::uint64_t> head_seqs(std::span<const std::string> users) override;
  std::optional<std::uint64_t> cursor(std::string_view user, std::string_view device) override;
  std::optional<std::uint64_t> lost_mark(std::string_view user, std::string_view device) override;
  std::vector<DeviceCursor> cursors(std::string_view user) override;
  void register_device(std::string_view user, std::string_view device,
                       std::uint64_t initial_cursor) override;
  void commit_cursors(std::span<const CursorUpdate> updates) override;
  // The dead-letter decision runs in the scripts, on any node: acks above a
  // gap go to the user's `acked` set for them to see.
  bool keeps_ack_marks() const override { return true; }
  void commit_ack_marks(std::span<const AckMark> marks) override;
  // Users come from the global expiry index (earliest expiry per user, in
  // kExpiryBuckets sorted sets); each user's expired messages leave in one
  // script.
  std::size_t expire(std::int64_t now_ms, std::size_t budget) override;
  std::vector<DeadLetter> dead_letters(std::uint64_t after_id, std::size_t limit) override;
  std::uint64_t dead_letter_count() override;
  std::optional<DeadLetter> dead_letter(std::string_view user, std::uint64_t seq) override;
  BacklogSlice scan_backlog(std::string_view position, std::size_t max_users) override;
  // PING to every node, at most once per kHealthTtl while nothing failed
  // meanwhile: it is asked on every WebSocket connect.
  bool healthy() override;

  ScheduleResult schedule(const NewMessage& m, std::int64_t deliver_at_ms) override;
  std::vector<ScheduledMessage> due(std::int64_t now_ms, std::size_t limit) override;
  void remove(std::span<const std::uint64_t> schedule_ids) override;
  std::size_t scheduled_count() override;

  const RedisLinkStats& link_stats() const { return link_.stats(); }

  // Redis' own persistence, "appendonly=<yes|no> appendfsync=<policy>", from
  // CONFIG GET on a node; nullopt when Redis does not answer or refuses
  // CONFIG (managed services). For the startup check against HERALD_SYNC.
  std::optional<std::string> persistence();

 private:
  // Dead letters made by scripts of one user, as JSON, on their way from the
  // user's dead_out list to the global log.
  using DeadBatch = std::vector<std::pair<std::string, std::vector<std::string>>>;

  RedisCommand user_script(const RedisScript& script, std::string_view user,
                           std::vector<std::string> argv) const;
  // One device's field of a per-device hash of the user (cursors, lost marks).
  std::optional<std::uint64_t> device_value(UserKey hash, std::string_view user, std::string_view device);
  // Appends to the global log, then drops them from the users' dead_out.
  void move_dead_letters(const DeadBatch& batch);
  // Which messages of the batch have their (user, id) in the schedule.
  std::vector<bool> held_by_schedule(std::span<const NewMessage> batch);
  // Lowers a user's score in the global expiry index (ZADD LT).
  RedisCommand index_lower(std::string_view user, std::int64_t at_ms) const;
  std::size_t expire_user(const std::string& user, std::size_t bucket, std::int64_t now_ms,
                          std::size_t limit);

  static constexpr std::int64_t kHealthTtlMs = 100;  // readiness flips within 0.1 s of an outage

  const StorePolicy policy_;
  const RedisStoreOptions options_;
  const RedisKeys keys_;
  RedisLink link_;
  // How many messages the schedule holds, every node's, as due() last saw
  // it (every 20 ms) or 1 once this node scheduled one; -1 until known.
  // Zero spares an append the schedule lookup.
  std::atomic<std::int64_t> scheduled_hint_{-1};
  std::atomic<std::int64_t> healthy_until_ms_{0};  // steady clock; a PING answered before then
  std::atomic<std::uint64_t> errors_at_ping_{0};   // link errors when that PING was answered
};

}  // namespace herald::store
