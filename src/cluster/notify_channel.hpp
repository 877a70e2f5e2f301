#pragma once
// Tells the other Herald nodes sharing a Redis which users got new messages
// (ARCHITECTURE.md "Several nodes"), so that a publish on one node reaches a
// device connected to another, and which devices connected, so that an
// older connection of the device on another node closes with 4011
// (PROTOCOL.md 2). This first slice broadcasts: one Redis
// Pub/Sub channel for all nodes, one PUBLISH per store commit carrying the
// users it appended to; every node notifies its own connections of those
// users. (Presence, to tell only the nodes holding the user, comes next.)
//
// Pub/Sub is at most once: a notification lost while a node was not
// subscribed (Redis restart, network) is not replayed. The device then gets
// the message with the next notification for its user or when it
// reconnects (docs/cluster.md "Routing").
//
// Owns a subscriber thread with its own connection (reconnecting with
// backoff) and a RedisLink for publishing. publish() is thread-safe; the
// on_users callback runs on the subscriber thread.
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "store/redis/redis_endpoints.hpp"
#include "store/redis/redis_link.hpp"

namespace herald::cluster {

struct NotifyStats {
  std::atomic<std::uint64_t> published{0};       // PUBLISHes answered
  std::atomic<std::uint64_t> publish_failures{0};
  std::atomic<std::uint64_t> received{0};        // notifications from other nodes
  std::atomic<std::uint64_t> replaces{0};        // device replacements from other nodes
  std::atomic<std::uint64_t> subscribes{0};      // (re)subscriptions made
};

class NotifyChannel {
 public:
  using OnUsers = std::function<void(const std::vector<std::string>& users)>;
  // A device connected on another node at connected_at_ms (unix ms).
  using OnReplace = std::function<void(const std::string& user, const std::string& device,
                                       std::int64_t connected_at_ms)>;
  // An operator kicked the user's connections (one device, or all when
  // device is nullopt) through another node (PROTOCOL.md 8).
  using OnKick = std::function<void(const std::string& user, const std::optional<std::string>& device)>;

  // channel: the Redis channel all nodes share. A random instance id marks
  // this process' own notifications, which are not handed back to it (two
  // nodes may share a node_id by mistake; they must still hear each other).
  NotifyChannel(store::RedisEndpoints endpoints, std::string channel, OnUsers on_users,
                OnReplace on_replace = {}, OnKick on_kick = {});
  ~NotifyChannel();
  NotifyChannel(const NotifyChannel&) = delete;
  NotifyChannel& operator=(const NotifyChannel&) = delete;

  void start();
  void stop();
  // One PUBLISH for all of them. Failures are counted, not retried: the
  // message is in the store, only its push to other nodes is late.
  void publish(std::span<const std::string> users);
  // A device connected here: the other nodes close its older connections.
  void publish_replace(const std::string& user, const std::string& device, std::int64_t connected_at_ms);
  // An operator kick made here: the other nodes close their connections too.
  void publish_kick(const std::string& user, const std::optional<std::string>& device);

  // True once subscribed (tests wait for it), false while reconnecting.
  bool subscribed() const { return subscribed_.load(); }
  const NotifyStats& stats() const { return stats_; }

 private:
  void run();
  void send(std::string payload);
  void dispatch(const std::string& payload);

  const store::RedisEndpoints endpoints_;
  const std::string channel_;
  const std::string instance_;  // random, per process
  const OnUsers on_users_;
  const OnReplace on_replace_;
  const OnKick on_kick_;
  store::RedisLink link_;
  NotifyStats stats_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> subscribed_{false};
  std::thread thread_;
};

}  // namespace herald::cluster
