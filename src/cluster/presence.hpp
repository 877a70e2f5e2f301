#pragma once
// Presence across nodes sharing Redis (PROTOCOL.md 8 presence, with a real
// `node`): which devices of a user are connected to which node.
//
// Per user, one hash P{u:U}:presence, device -> "node\nconn_id\nconnected
// at ms", written when a device connects here and removed when that same
// connection ends (compare-and-delete, so a newer connection elsewhere is
// never erased). Per node, P{node:N}:alive, refreshed every second with a
// 5 s expiry: entries of a node whose key expired (killed, partitioned) are
// left out of answers and removed, so a dead node stops being listed within
// 5 s.
//
// Owns a RedisLink. Thread-safe. Failures are ignored (presence is advice
// for operators, never a delivery path).
#include <cstdint>
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
  // Refreshes this node's alive key; call about every second.
  void heartbeat();
  // Devices of the user on other live nodes.
  std::vector<RemoteDevice> remote(const std::string& user);

  static constexpr std::int64_t kAliveMs = 5000;  // a dead node leaves presence within this

 private:
  std::string key(const std::string& user) const;
  std::string alive_key(const std::string& node) const;
  std::string entry(const std::string& conn_id, std::int64_t connected_at_ms) const;

  const std::string prefix_;
  const std::string node_id_;
  store::RedisLink link_;
};

}  // namespace herald::cluster
