#pragma once
// Messages waiting for users who had no live connection on this node when
// they were published: the "offline backlog" of the dashboard and of
// herald_offline_backlog_messages. A user's count goes back to zero when a
// connection of that user is accepted (from then on its messages are
// replayed from the inbox and show as inflight).
//
// It is a node-local estimate, not an inbox scan: it starts at zero when the
// server starts, does not see expiry or trimming, and counts users, not
// devices (a user online on one device has no offline backlog here). A
// publish racing the user's connect may leave its one message counted until
// the next connect.
//
// Thread-safe: sharded like the hub, each shard's mutex held for one map
// operation. Bounded: at most max_users users are tracked; messages to
// further users are counted in `untracked()` and never in the level.
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace herald::gateway {

class OfflineBacklog {
 public:
  // 100k offline users at ~100 bytes each keeps the map near 10 MB.
  OfflineBacklog() : OfflineBacklog(100000) {}
  explicit OfflineBacklog(std::size_t max_users) : max_users_(max_users) {}

  // One message was stored for a user with no live connection.
  void add(std::string_view user);
  // A connection of the user was accepted: its backlog is being replayed.
  void clear(std::string_view user);

  std::uint64_t messages() const { return messages_.load(std::memory_order_relaxed); }
  std::uint64_t users() const { return users_.load(std::memory_order_relaxed); }
  std::uint64_t untracked() const { return untracked_.load(std::memory_order_relaxed); }

 private:
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::uint64_t> counts;  // user -> messages waiting
  };
  static constexpr std::size_t kShards = 16;
  Shard& shard_of(std::string_view user);

  const std::size_t max_users_;
  std::array<Shard, kShards> shards_;
  std::atomic<std::uint64_t> messages_{0};   // sum of all counts
  std::atomic<std::uint64_t> users_{0};      // users in the maps
  std::atomic<std::uint64_t> untracked_{0};  // messages to users beyond max_users_
};

}  // namespace herald::gateway
