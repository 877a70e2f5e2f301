#pragma once
// The registry of live connections by (user, device), sharded by user so
// that publishes to different users do not contend (ARCHITECTURE.md "hub").
// A newer connection of a device replaces the older one (PROTOCOL.md 2).
//
// Thread-safe: each shard has its own mutex, held only to copy pointers;
// callbacks into connections (notify, kick) run after it is released.
#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/string_map.hpp"
#include "hub/live_connection.hpp"

namespace herald::hub {

class Hub {
 public:
  enum class AddResult { added, replaced, user_limit, stale };
  struct Added {
    AddResult result;
    std::shared_ptr<LiveConnection> replaced;  // set when result == replaced
  };

  // Registers conn as its device's live connection (conn->user(),
  // conn->device()). A replacing connection
  // does not count against max_per_user (PROTOCOL.md 10). The replaced one
  // is returned, not closed: the caller kicks it with 4011. A stale attempt
  // (AttemptId::stale_against the live one) is not registered: its client
  // already moved on to the live connection.
  Added add(std::shared_ptr<LiveConnection> conn, std::uint32_t max_per_user);
  // Unregisters conn if it is still the device's registered connection.
  void remove(const LiveConnection& conn);
  // Tells every live connection of the user that new messages may be there.
  // Returns how many were told.
  std::size_t notify(std::string_view user);
  std::vector<std::shared_ptr<LiveConnection>> connections(std::string_view user) const;
  // The live connections of one shard (0 .. shard_count()-1): a bounded
  // slice of all of them, for passes that visit every user over time.
  std::vector<std::shared_ptr<LiveConnection>> shard_connections(std::size_t shard) const;
  static constexpr std::size_t shard_count() { return kShards; }
  // Every live connection (drain, dashboards). Copies under each shard lock in turn.
  void for_each(const std::function<void(const std::shared_ptr<LiveConnection>&)>& fn) const;
  std::size_t size() const { return size_.load(std::memory_order_relaxed); }
  std::size_t users() const { return users_.load(std::memory_order_relaxed); }

 private:
  // One entry per live connection, keyed by a view of that connection's
  // own user string (which lives as long as the entry holds the
  // connection): 48 bytes per connection, where a map from a copied user
  // string to a vector of connections took 104.
  using Entries = std::unordered_multimap<std::string_view, std::shared_ptr<LiveConnection>, StringHash,
                                          std::equal_to<>>;
  struct Shard {
    mutable std::mutex mu;
    Entries users;
  };
  static constexpr std::size_t kShards = 64;
  Shard& shard_of(std::string_view user) const;

  mutable std::array<Shard, kShards> shards_;
  std::atomic<std::size_t> size_{0};
  std::atomic<std::size_t> users_{0};
};

}  // namespace herald::hub
