#pragma once
// Recent messages kept in memory in front of a disk store, so the live path
// (a device connected and waiting for the next seq) does not read from disk
// (ARCHITECTURE.md "Data flow"). A decorator: every InboxStore call goes to
// the backend except reads the cache can answer.
//
// Per user the cache holds every retained message from `complete_from` to
// the head, as appended through it (at most retention_max_messages of them,
// so none of them can have been trimmed; collapsed ones are dropped as the
// newer one arrives; expired ones are skipped on read). A read after a seq
// below complete_from goes to the backend (a miss). Bounded in bytes: 64
// shards, each with its own LRU of users and a share of max_bytes.
//
// Single node only: a message appended by another node would not be seen
// (the redis backend must not be wrapped). Thread-safe.
#include <array>
#include <atomic>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "core/string_map.hpp"

#include "store/inbox_store.hpp"

namespace herald::store {

struct MessageCacheStats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::size_t bytes = 0;
  std::size_t users = 0;
};

class MessageCache final : public InboxStore {
 public:
  MessageCache(InboxStore& backend, StorePolicy policy, std::size_t max_bytes);

  std::vector<AppendOutcome> append(std::span<const NewMessage> batch, std::int64_t now_ms) override;
  std::vector<MessagePtr> read_after(std::string_view user, std::uint64_t after_seq,
                                     std::size_t limit, std::int64_t now_ms) override;
  MessagePtr get(std::string_view user, std::uint64_t seq) override;
  InboxState state(std::string_view user) override { return backend_.state(user); }
  std::optional<std::uint64_t> cursor(std::string_view user, std::string_view device) override {
    return backend_.cursor(user, device);
  }
  std::optional<std::uint64_t> lost_mark(std::string_view user, std::string_view device) override {
    return backend_.lost_mark(user, device);
  }
  std::vector<DeviceCursor> cursors(std::string_view user) override { return backend_.cursors(user); }
  void release_idle(std::int64_t now_ms) override { backend_.release_idle(now_ms); }
  void register_device(std::string_view user, std::string_view device, std::uint64_t c) override {
    backend_.register_device(user, device, c);
  }
  void commit_cursors(std::span<const CursorUpdate> updates) override { backend_.commit_cursors(updates); }
  std::size_t expire(std::int64_t now_ms, std::size_t budget) override { return backend_.expire(now_ms, budget); }
  std::vector<DeadLetter> dead_letters(std::uint64_t after_id, std::size_t limit) override {
    return backend_.dead_letters(after_id, limit);
  }
  std::uint64_t dead_letter_count() override { return backend_.dead_letter_count(); }
  std::optional<DeadLetter> dead_letter(std::string_view user, std::uint64_t seq) override {
    return backend_.dead_letter(user, seq);
  }
  BacklogSlice scan_backlog(std::string_view position, std::size_t max_users) override {
    return backend_.scan_backlog(position, max_users);
  }
  bool healthy() override { return backend_.healthy(); }

  MessageCacheStats stats() const;

 private:
  struct Entry {
    std::deque<MessagePtr> messages;  // ascending seq, all retained from complete_from
    std::uint64_t complete_from = 0;
    std::size_t bytes = 0;
    std::list<std::string>::iterator lru;
  };
  struct Shard {
    mutable std::mutex mu;
    StringMap<Entry> users;
    std::list<std::string> lru;  // front: most recently used
    std::size_t bytes = 0;
  };
  static constexpr std::size_t kShards = 64;

  Shard& shard_of(std::string_view user);
  void add_locked(Shard& s, const NewMessage& m, std::uint64_t seq);
  void pop_front_locked(Shard& s, Entry& e);
  void evict_locked(Shard& s);
  static std::size_t cost(const StoredMessage& m);

  InboxStore& backend_;
  const StorePolicy policy_;
  const std::size_t shard_budget_;
  std::array<Shard, kShards> shards_;
  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
};

}  // namespace herald::store
