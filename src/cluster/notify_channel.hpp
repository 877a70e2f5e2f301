#pragma once
// Tells the other Herald nodes sharing a Redis which users got new messages
// (ARCHITECTURE.md "Several nodes"), so that a publish on one node reaches a
// device connected to another, and which devices connected, so that an
// older connection of the device on another node closes with 4011
// (PROTOCOL.md 2).
//
// Targeted notifications: each node subscribes to a channel of its own,
// P{node:N}:notify. After a store commit, the users it appended to are
// queued here; the notifier thread takes everything queued at once and, on a
// standalone Redis, runs one Lua script (per 500 users) in one round trip,
// which reads each user's presence hash (P{u:U}:presence, see presence.hpp)
// and PUBLISHes to each other node holding one of them one notification
// naming its users. On a Redis Cluster (a script's keys share one slot) it
// reads the presence hashes in one pipeline per master, then PUBLISHes once
// per node: two round trips. A node that holds none of them hears nothing.
// Neither the store worker nor an I/O thread waits for it.
//
// Device replacements and kicks still go to every node, on the shared
// channel P + "notify" (the presence entry of the older connection is
// already overwritten when a device reconnects elsewhere).
//
// Pub/Sub is at most once: a notification lost while a node was not
// subscribed (Redis restart, network), a node holding the user but missing
// from presence, or a full queue is not replayed. The catch-up pass
// (catch_up.hpp) delivers those messages within its bound
// (docs/cluster.md "Routing").
//
// Owns a subscriber thread with its own connection (reconnecting with
// backoff), a notifier thread and a RedisLink for publishing. publish(),
// publish_replace() and publish_kick() are thread-safe; the callbacks run on
// the subscriber thread.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "metrics/histogram.hpp"
#include "store/redis/redis_endpoints.hpp"
#include "store/redis/redis_link.hpp"

namespace herald::cluster {

struct NotifyStats {
  std::atomic<std::uint64_t> sent{0};            // notifications PUBLISHed to another node's channel
  std::atomic<std::uint64_t> users_sent{0};      // users named in them
  std::atomic<std::uint64_t> lookups{0};         // presence lookups made (scripts answered; cluster: batches)
  std::atomic<std::uint64_t> failures{0};        // lookups or PUBLISHes unanswered or failed
  std::atomic<std::uint64_t> dropped{0};         // users not queued: the queue was full
  std::atomic<std::uint64_t> received{0};        // notifications from other nodes
  std::atomic<std::uint64_t> users_received{0};  // users named in them
  std::atomic<std::uint64_t> replaces{0};        // device replacements from other nodes
  std::atomic<std::uint64_t> subscribes{0};      // (re)subscriptions made
  std::atomic<std::uint64_t> queued{0};          // users waiting for the notifier thread
};

class NotifyChannel {
 public:
  using OnUsers = std::function<void(const std::vector<std::string>& users)>;
  // A device connected on another node at connected_at_ms (unix ms), as
  // attempt attempt_n of the client session attempt_session (0 0: none;
  // hub::AttemptId), with that node's conn_id (empty from older nodes).
  using OnReplace = std::function<void(const std::string& user, const std::string& device,
                                       std::int64_t connected_at_ms, std::uint64_t attempt_session,
                                       std::uint64_t attempt_n, const std::string& conn_id)>;
  // An operator kicked the user's connections (one device, or all when
  // device is nullopt) through another node (PROTOCOL.md 8).
  using OnKick = std::function<void(const std::string& user, const std::optional<std::string>& device)>;

  // prefix: redis_prefix; node_id: this node's name, as presence writes it.
  // A random instance id marks this process' own messages on the shared
  // channel, which are not handed back to it.
  NotifyChannel(store::RedisEndpoints endpoints, std::string prefix, std::string node_id, OnUsers on_users,
                OnReplace on_replace = {}, OnKick on_kick = {});
  ~NotifyChannel();
  NotifyChannel(const NotifyChannel&) = delete;
  NotifyChannel& operator=(const NotifyChannel&) = delete;

  void start();
  // Sends what is queued, then stops both threads.
  void stop();
  // Queues the users (bounded: kQueueMax; past it they are dropped and
  // counted) for the notifier thread; never blocks on Redis. Failures are
  // counted, not retried: the messages are in the store, only their push to
  // other nodes is late.
  void publish(std::span<const std::string> users);
  // A device connected here: the other nodes close its older connections.
  void publish_replace(const std::string& user, const std::string& device, std::int64_t connected_at_ms,
                       std::uint64_t attempt_session = 0, std::uint64_t attempt_n = 0,
                       const std::string& conn_id = {});
  // An operator kick made here: the other nodes close their connections too.
  // False when Redis did not take it.
  bool publish_kick(const std::string& user, const std::optional<std::string>& device);

  // True once subscribed to both channels (tests wait for it), false while
  // reconnecting.
  bool subscribed() const { return subscribed_.load(); }
  const NotifyStats& stats() const { return stats_; }
  // Where received notifications record their lag: from the first of their
  // users queued on the sending node to the receipt here (both nodes' wall
  // clocks). Set before start().
  void observe_lag_with(metrics::Histogram* lag) { lag_ = lag; }

  static constexpr std::size_t kQueueMax = 100000;     // users waiting; about 3 MB at most
  static constexpr std::size_t kUsersPerScript = 500;  // keeps each script short for Redis

 private:
  void run_subscriber();
  void run_notifier();
  void notify_batch(const std::vector<std::string>& users, std::int64_t queued_ms);
  void notify_batch_cluster(const std::vector<std::string>& users, const std::string& header);
  bool send(std::string payload);
  void dispatch(const std::string& payload);

  const store::RedisEndpoints endpoints_;
  const std::string prefix_;
  const std::string node_id_;
  const std::string channel_;       // shared by all nodes: replacements and kicks
  const std::string node_channel_;  // this node's: notifications for its users
  const std::string instance_;      // random, per process
  const OnUsers on_users_;
  const OnReplace on_replace_;
  const OnKick on_kick_;
  store::RedisLink link_;
  NotifyStats stats_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> subscribed_{false};
  std::thread subscriber_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::vector<std::string> queue_;  // guarded by queue_mu_
  std::int64_t first_queued_ms_ = 0;  // unix ms the first of queue_ came; guarded by queue_mu_
  metrics::Histogram* lag_ = nullptr;
  bool notifier_stop_ = false;      // guarded by queue_mu_
  std::thread notifier_;
};

// This node's notification channel: P{node:N}:notify.
std::string node_channel(const std::string& prefix, const std::string& node_id);

}  // namespace herald::cluster
