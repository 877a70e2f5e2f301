#pragma once
// What every connection and handler of one server shares. Built by the
// server (the composition root); outlives all connections.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "auth/jwt.hpp"
#include "config/server_config.hpp"
#include "delivery/attempt_ledger.hpp"
#include "delivery/retry_schedule.hpp"
#include "gateway/connection_limits.hpp"
#include "gateway/cursor_flusher.hpp"
#include "gateway/gateway_metrics.hpp"
#include "gateway/offline_backlog.hpp"
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
  OfflineBacklog offline_backlog;    // messages for users with no live connection (dashboard)
};

}  // namespace herald::gateway
