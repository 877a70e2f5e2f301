#pragma once
// InboxStore kept in process memory: for tests and ephemeral runs. A new
// epoch at every start; seqs start at 1 again (PROTOCOL.md 10).
//
// Owns every inbox, sharded by user hash; each shard has its own mutex, so
// publishes to different users rarely contend. Also the schedule of delayed
// messages, under one mutex of its own; a restart loses it with the inboxes.
// Thread-safe. Lock order: schedule_mu_, then a shard mutex, then dead_mu_.
#include <array>
#include <deque>
#include <map>
#include <mutex>
#include <queue>
#include <set>
#include <unordered_map>

#include "store/inbox_store.hpp"
#include "store/schedule_store.hpp"

namespace herald::store {

class MemoryInboxStore final : public InboxStore, public ScheduleStore {
 public:
  explicit MemoryInboxStore(StorePolicy policy, std::size_t max_dead_letters = 100000,
                            std::size_t max_scheduled = kDefaultMaxScheduled);

  std::vector<AppendOutcome> append(std::span<const NewMessage> batch, std::int64_t now_ms) override;
  std::vector<MessagePtr> read_after(std::string_view user, std::uint64_t after_seq,
                                     std::size_t limit, std::int64_t now_ms) override;
  MessagePtr get(std::string_view user, std::uint64_t seq) override;
  InboxState state(std::string_view user) override;
  std::optional<std::uint64_t> cursor(std::string_view user, std::string_view device) override;
  std::optional<std::uint64_t> lost_mark(std::string_view user, std::string_view device) override;
  std::vector<DeviceCursor> cursors(std::string_view user) override;
  void register_device(std::string_view user, std::string_view device,
                       std::uint64_t initial_cursor) override;
  void commit_cursors(std::span<const CursorUpdate> updates) override;
  std::size_t expire(std::int64_t now_ms, std::size_t budget) override;
  std::vector<DeadLetter> dead_letters(std::uint64_t after_id, std::size_t limit) override;
  std::uint64_t dead_letter_count() override;
  std::optional<DeadLetter> dead_letter(std::string_view user, std::uint64_t seq) override;
  BacklogSlice scan_backlog(std::string_view position, std::size_t max_users) override;
  bool healthy() override { return true; }

  ScheduleResult schedule(const NewMessage& m, std::int64_t deliver_at_ms) override;
  std::vector<ScheduledMessage> due(std::int64_t now_ms, std::size_t limit) override;
  void remove(std::span<const std::uint64_t> schedule_ids) override;
  std::size_t scheduled_count() override;

 private:
  struct DedupEntry {
    std::uint64_t seq;
    std::int64_t accepted_ms;
  };
  using DeviceMap = std::map<std::string, std::uint64_t, std::less<>>;
  struct Inbox {
    std::string epoch;
    std::uint64_t head_seq = 0;
    std::uint64_t max_lost_seq = 0;
    std::map<std::uint64_t, MessagePtr> messages;                 // retained, by seq
    std::unordered_map<std::string, DedupEntry> dedup;            // id -> original seq
    std::deque<std::pair<std::int64_t, std::string>> dedup_order; // (accepted_ms, id), for pruning
    std::unordered_map<std::string, std::uint64_t> collapse;      // collapse_key -> seq
    DeviceMap devices;                                            // device -> cursor
    DeviceMap lost_marks;                                         // device -> lost mark
  };
  struct ExpiryEntry {
    std::int64_t expires_at_ms;
    std::string user;
    std::uint64_t seq;
    bool operator>(const ExpiryEntry& o) const { return expires_at_ms > o.expires_at_ms; }
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Inbox> inboxes;
    std::priority_queue<ExpiryEntry, std::vector<ExpiryEntry>, std::greater<>> expiry;
  };
  static constexpr std::size_t kShards = 64;

  Shard& shard_of(std::string_view user);
  // One device's entry in one of the inbox's per-device maps.
  std::optional<std::uint64_t> device_value(DeviceMap Inbox::*map, std::string_view user,
                                            std::string_view device);
  Inbox& inbox_locked(Shard& s, std::string_view user);
  AppendResult append_locked(Shard& s, const NewMessage& m, std::int64_t now_ms);
  // Removes a retained message; unacked ones go to the dead-letter log.
  void remove_locked(Inbox& inbox, const std::string& user, std::uint64_t seq, DeadReason reason,
                     std::int64_t now_ms);
  void add_dead_letter(DeadLetter d);
  // True when (user, id) was appended within the dedup window as of now_ms.
  bool appended_within_window(const std::string& user, const std::string& id, std::int64_t now_ms);

  const StorePolicy policy_;
  const std::string epoch_;  // one per process start
  std::array<Shard, kShards> shards_;

  std::mutex dead_mu_;
  std::deque<DeadLetter> dead_;  // bounded by max_dead_letters_, oldest dropped
  std::uint64_t next_dead_id_ = 1;
  const std::size_t max_dead_letters_;

  std::mutex schedule_mu_;
  std::map<std::uint64_t, ScheduledMessage> scheduled_;              // by schedule id
  std::set<std::pair<std::int64_t, std::uint64_t>> schedule_order_;  // (deliver_at, schedule id)
  std::set<std::pair<std::string, std::string>> scheduled_keys_;     // (user, id), for dedup
  std::uint64_t next_schedule_id_ = 1;
  const std::size_t max_scheduled_;
};

}  // namespace herald::store
