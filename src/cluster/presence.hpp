#pragma once
// Presence across nodes sharing Redis (PROTOCOL.md 8 presence, with a real
// `node`): which devices of a user are connected to which node.
//
// Per user, one hash P{u:U}:presence, device -> "node\nconn_id\nconnected
// at ms\nincarnation", written when a device connects here and removed when
// that same connection ends (compare-and-delete, so a newer connection
// elsewhere is never erased). Per node, P{node:N}:alive holds the node's
// incarnation (random per process start), refreshed every second with a
// 5 s expiry. An entry counts only while its node's alive key holds its
// incarnation: entries of a node that was killed are left out of answers
// and removed within 5 s, or at once when it restarts under the same id
// (its old entries name the old incarnation).
//
// Owns a RedisLink. Thread-safe. Presence is advice for operators and the
// per-user limit, never a delivery path: a removal that fails (Redis down)
// is kept and retried by heartbeat(); a failed write is not (the catch-up
// covers a node missing from presence, docs/cluster.md).
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "store/redis/redis_endpoints.hpp"
#include "store/redis/redis_link.hpp"

namespace herald::cluster {

// P{u:U}:presence, in the user's slot (the hash tag of the inbox keys).
std::string presence_key(const std::string& prefix, const std::string& user);
// P{node:N}:alive: present while node N runs (refreshed every second, 5 s expiry).
std::string node_alive_key(const std::string& prefix, const std::string& node);

struct RemoteDevice {
  std::string device;
  std::string node;
  std::string conn_id;
  std::int64_t connected_at_ms = 0;
};

class Presence {
 public:
  Presence(store::RedisEndpoints endpoints, std::string prefix, std::string node_id);

  void connected(const std::string& user, const std::string& device, const std::string& conn_id,
                 std::int64_t connected_at_ms);
  void disconnected(const std::string& user, const std::string& device, const std::string& conn_id,
                    std::int64_t connected_at_ms);
  // Refreshes this node's alive key and retries removals that failed; call
  // about every second.
  void heartbeat();
  // Devices of the user on other live nodes.
  std::vector<RemoteDevice> remote(const std::string& user);

  static constexpr std::int64_t kAliveMs = 5000;  // a dead node leaves presence within this
  // Failed removals kept for retry; beyond this the oldest are dropped
  // (their entries then stay until this node restarts).
  static constexpr std::size_t kMaxPendingRemovals = 100'000;
  std::size_t pending_removals() const;

 private:
  struct Removal {
    std::string user;
    std::string device;
    std::string entry;
  };
  std::string key(const std::string& user) const;
  std::string alive_key(const std::string& node) const;
  std::string entry(const std::string& conn_id, std::int64_t connected_at_ms) const;
  void retry_removals();

  const std::string prefix_;
  const std::string node_id_;
  const std::string incarnation_;
  store::RedisLink link_;
  mutable std::mutex pending_mu_;
  std::deque<Removal> pending_;  // guarded by pending_mu_
};

}  // namespace herald::cluster
