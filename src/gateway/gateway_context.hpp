#pragma once
// What every connection and handler of one server shares. Built by the
// server (the composition root); outlives all connections.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "auth/jwt.hpp"
#include "cluster/presence.hpp"
#include "config/server_config.hpp"
#include "delivery/attempt_ledger.hpp"
#include "delivery/retry_schedule.hpp"
#include "gateway/connection_limits.hpp"
#include "gateway/cursor_flusher.hpp"
#include "gateway/gateway_metrics.hpp"
#include "hub/hub.hpp"
#include "store/inbox_store.hpp"

namespace herald::gateway {

struct GatewayContext {
  const config::ServerConfig& config;
  store::InboxStore& store;
  hub::Hub& hub;
  const auth::JwtVerifier& jwt;
  GatewayMetrics& metrics;
  ConnectionLimits& limits;
  delivery::RetryPolicy retry;
  std::vector<std::unique_ptr<CursorFlusher>> flushers;  // by worker index
  std::atomic<bool> draining{false};
  delivery::AttemptLedger attempts;  // sends per (user, device, seq), for inspection
  // Tells the other nodes sharing the store which users got new messages;
  // empty on a single node. Called on the store worker after each commit;
  // must not wait for the network (cluster::NotifyChannel queues them).
  std::function<void(std::span<const std::string> users)> remote_notify;
  // Tells the other nodes that a device connected here, so that they close
  // its older connections with 4011 (not a later attempt of the same
  // client: hub::AttemptId); empty on a single node.
  std::function<void(const std::string& user, const std::string& device, const hub::ConnectStamp& stamp)>
      remote_replace;
  // True when a connection of the device made on another node moments ago
  // replaces one with this stamp that is only now in this node's hub
  // (hub::RecentRemoteConnects); empty on a single node.
  std::function<bool(const std::string& user, const std::string& device, const hub::ConnectStamp& stamp)>
      replaced_by_remote;
  // Tells the other nodes to close the user's connections (of one device,
  // or all) with 4010; false when Redis did not take the message. Empty on
  // a single node.
  std::function<bool(const std::string& user, const std::optional<std::string>& device)> remote_kick;
  // Presence across nodes sharing Redis; null on a single node.
  cluster::Presence* presence = nullptr;
};

// Retry-After (whole seconds, at least 1) of a refusal while draining: the
// node, or the one replacing it, is back within drain_retry_after.
inline std::string drain_retry_after_seconds(const config::ServerConfig& c) {
  return std::to_string(std::max<std::int64_t>(1, (c.drain_retry_after.count() + 999) / 1000));
}

}  // namespace herald::gateway
