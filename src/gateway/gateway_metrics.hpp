#pragma once
// The gateway's metrics (issue "Operations"): registered once per server in
// its own Registry, then bumped lock-free from any thread.
#include <array>

#include "core/close_reason.hpp"
#include "core/errc.hpp"
#include "metrics/registry.hpp"
#include "transport/http_session.hpp"
#include "transport/ws_counters.hpp"

namespace herald::gateway {

enum class RefuseReason { unauthorized, bad_request, forbidden_origin, user_limit, ip_limit,
                          global_limit, draining, store_unavailable, not_found, stale_attempt, count_ };

struct GatewayMetrics {
  explicit GatewayMetrics(metrics::Registry& r);

  metrics::Registry& registry;
  metrics::Gauge& connections_active;
  metrics::Counter& connections_accepted;
  std::array<metrics::Counter*, static_cast<std::size_t>(RefuseReason::count_)> refused{};
  std::array<metrics::Counter*, 11> closed{};  // by CloseReason, see closed_counter()
  metrics::Counter& messages_published;
  metrics::Counter& messages_duplicate;
  metrics::Counter& messages_delivered;    // first attempts written to a connection
  metrics::Counter& messages_redelivered;  // attempts > 1
  metrics::Counter& messages_acked;
  metrics::Counter& ack_timeouts;          // connections closed after max_attempts
  metrics::Gauge& inflight;                // unacked messages over all connections
  metrics::Gauge& offline_backlog_messages;  // from the store's background census
  metrics::Gauge& offline_backlog_users;
  metrics::Histogram& push_latency;        // accept -> queued to the socket, seconds
  metrics::Histogram& ack_latency;         // accept -> ack, seconds
  metrics::Histogram& publish_latency;     // publish request read -> response handed over, seconds
  metrics::Histogram& heartbeat_rtt;       // WebSocket ping -> pong, seconds
  metrics::Histogram& store_append_latency;
  metrics::Histogram& store_read_latency;
  metrics::Histogram& group_commit_size;
  metrics::Counter& publish_requests;
  // 4xx/5xx answers to publish requests, by error code.
  void count_publish_rejected(errc code);
  std::uint64_t publish_rejected_total() const;
  metrics::Counter& cursor_commits;
  std::array<metrics::Counter*, kErrcCount> publish_rejected{};  // by errc; registered for publish's codes
  metrics::Counter& send_queue_waits;  // deliveries held back until the send queue drained
  metrics::Counter& send_timeouts;     // connections closed 4009 for a write stuck send_timeout_ms
  metrics::Counter& api_unauthorized;  // HTTP API requests refused 401 (missing or wrong API key)

  transport::WsCounters ws;
  transport::HttpCounters http;

  metrics::Counter& closed_counter(CloseReason r);
  metrics::Counter& refused_counter(RefuseReason r) { return *refused[static_cast<std::size_t>(r)]; }
};

}  // namespace herald::gateway
