#pragma once
// The redis store's way to Redis: standalone or Redis Cluster, chosen by
// RedisEndpoints. Sends many commands as pipelines (one round trip per node
// for a whole batch), follows MOVED/ASK and refreshes the slot map, loads a
// script where a node answers NOSCRIPT, and reconnects with backoff after a
// node went away.
//
// Owns a small pool of connections per node and the slot map. Thread-safe:
// every method may be called from any thread at once; each call takes its
// own connection out of the pool, so callers never share a socket. The only
// locks are the node table's, one per node's pool and the slot map's (never
// two at a time), and none is held during I/O.
//
// Knows nothing of inboxes: commands are argument lists routed by one key.
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "store/redis/redis_command.hpp"
#include "store/redis/redis_endpoints.hpp"
#include "store/redis/slot_map.hpp"

namespace herald::store {

class RedisConnection;

struct RedisLinkOptions {
  std::chrono::milliseconds connect_timeout{1000};  // loopback or LAN: a second is an outage
  std::chrono::milliseconds command_timeout{2000};  // well above an AOF fsync, below the publisher's patience
  std::chrono::milliseconds backoff_initial{50};    // first wait after a failed connect
  std::chrono::milliseconds backoff_max{1000};      // cap: a restarted Redis is used within a second
  std::size_t max_idle_per_node = 8;                // the store worker plus a few readers
  // Called after each round trip with the number of commands it carried
  // (the pipeline depth metric). Must be thread-safe.
  std::function<void(std::size_t)> on_round_trip;
};

// Counters for /metrics, read with relaxed loads.
struct RedisLinkStats {
  std::atomic<std::uint64_t> round_trips{0};       // pipelines written and read
  std::atomic<std::uint64_t> commands{0};          // commands answered
  std::atomic<std::uint64_t> errors{0};            // commands unanswered or answered with an error
  std::atomic<std::uint64_t> reconnects{0};        // connects that succeeded after a failed one
  std::atomic<std::uint64_t> connect_failures{0};  // connects that failed
  std::atomic<std::uint64_t> redirects{0};         // MOVED and ASK followed
};

class RedisLink {
 public:
  RedisLink(RedisEndpoints endpoints, RedisLinkOptions options);
  ~RedisLink();
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  // Runs every command and returns their replies in the same order. The
  // commands for one node go in one pipeline, in their order. A nullptr
  // reply means no answer (node unreachable, in backoff, or the connection
  // broke mid-way: the command may or may not have run). Error replies other
  // than the redirections and NOSCRIPT it handles are returned as they are.
  std::vector<RedisReply> execute(const std::vector<RedisCommand>& commands);
  RedisReply execute_one(const RedisCommand& command);

  // Every node answers PING (cluster: every master of the slot map).
  bool ping_all();

  bool cluster() const { return endpoints_.cluster; }
  const RedisLinkStats& stats() const { return stats_; }

 private:
  struct Node {
    std::mutex mu;
    std::vector<std::unique_ptr<RedisConnection>> idle;  // ready connections
    std::chrono::steady_clock::time_point retry_at{};    // no connect before this
    std::chrono::milliseconds backoff{0};                // 0: the last connect worked
  };

  Node& node(const NodeAddress& address);
  std::unique_ptr<RedisConnection> acquire(const NodeAddress& address);
  void release(std::unique_ptr<RedisConnection> connection);
  void forget_idle(const NodeAddress& address);
  NodeAddress route(const RedisCommand& command) const;
  void refresh_slots();

  const RedisEndpoints endpoints_;
  const RedisLinkOptions options_;
  RedisLinkStats stats_;

  std::mutex nodes_mu_;
  std::map<NodeAddress, std::unique_ptr<Node>> nodes_;  // never shrinks: a handful of nodes

  mutable std::shared_mutex slots_mu_;
  SlotMap slots_;  // cluster only
};

}  // namespace herald::store
