#include "gateway/gateway_metrics.hpp"

namespace herald::gateway {
namespace {

constexpr std::array<CloseReason, 11> kCloseReasons{
    CloseReason::normal,        CloseReason::going_away,   CloseReason::message_too_big,
    CloseReason::token_invalid, CloseReason::protocol_error, CloseReason::unresponsive,
    CloseReason::slow_consumer, CloseReason::kicked,       CloseReason::replaced,
    CloseReason::rate_limited,  CloseReason::transport_error};

constexpr std::array<const char*, static_cast<std::size_t>(RefuseReason::count_)> kRefuseNames{
    "unauthorized", "bad_request", "forbidden_origin", "user_limit", "ip_limit",
    "global_limit", "draining",    "store_unavailable", "not_found", "stale_attempt"};

std::vector<double> size_buckets() { return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096}; }

}  // namespace

GatewayMetrics::GatewayMetrics(metrics::Registry& r)
    : registry(r),
      connections_active(r.gauge("herald_connections_active", "Open WebSocket connections")),
      connections_accepted(r.counter("herald_connections_accepted_total", "WebSocket upgrades accepted")),
      messages_published(r.counter("herald_messages_published_total", "Messages appended to inboxes")),
      messages_duplicate(r.counter("herald_messages_duplicate_total", "Publishes answered as duplicates (same user and id)")),
      messages_delivered(r.counter("herald_messages_delivered_total", "First attempts written to a connection")),
      messages_redelivered(r.counter("herald_messages_redelivered_total", "Redeliveries (attempt > 1)")),
      messages_acked(r.counter("herald_messages_acked_total", "Messages acknowledged by a device")),
      ack_timeouts(r.counter("herald_ack_timeouts_total", "Connections closed 4008 after max_attempts unacked sends")),
      inflight(r.gauge("herald_inflight_messages", "Sent and not yet acknowledged messages (retry queue)")),
      offline_backlog_messages(r.gauge("herald_offline_backlog_messages",
                                       "Retained messages not yet acked by every known device of their user "
                                       "(store census, last pass)")),
      offline_backlog_users(r.gauge("herald_offline_backlog_users",
                                    "Users with such messages (store census, last pass)")),
      push_latency(r.histogram("herald_push_latency_seconds", "From publish accepted to frame queued on the socket",
                               metrics::latency_buckets_seconds())),
      ack_latency(r.histogram("herald_ack_latency_seconds", "From publish accepted to ack",
                              metrics::latency_buckets_seconds())),
      publish_latency(r.histogram("herald_publish_seconds",
                                  "From a publish request read to its response handed to the connection "
                                  "(group commit included)",
                                  metrics::latency_buckets_seconds())),
      heartbeat_rtt(r.histogram("herald_heartbeat_rtt_seconds", "WebSocket ping to pong round trip",
                                metrics::latency_buckets_seconds())),
      store_append_latency(r.histogram("herald_store_append_seconds", "Duration of one group commit",
                                       metrics::latency_buckets_seconds())),
      store_read_latency(r.histogram("herald_store_read_seconds",
                                     "Duration of one inbox read on the delivery path (message cache or store)",
                                     metrics::latency_buckets_seconds())),
      group_commit_size(r.histogram("herald_group_commit_messages", "Messages per group commit", size_buckets())),
      publish_requests(r.counter("herald_publish_requests_total", "Publish HTTP requests")),
      cursor_commits(r.counter("herald_cursor_commits_total", "Cursor updates written to the store")),
      send_queue_waits(r.counter("herald_send_queue_waits_total",
                                 "Deliveries held back until a connection's send queue drained to half of "
                                 "max_send_queue_bytes (a backlog or a message larger than the queue)")),
      send_timeouts(r.counter("herald_send_timeouts_total",
                              "Connections closed 4009 because a write waited send_timeout_ms for the socket "
                              "(a client that stopped reading)")),
      api_unauthorized(r.counter("herald_api_unauthorized_total",
                                 "HTTP API requests answered 401: no API key or a wrong one, on any route")) {
  // The codes a publish can be answered with; any other counts as internal.
  for (const errc code : {errc::bad_request, errc::invalid_json, errc::unauthorized, errc::payload_too_large,
                          errc::rate_limited, errc::draining, errc::store_unavailable, errc::overloaded,
                          errc::internal}) {
    publish_rejected[static_cast<std::size_t>(code)] =
        &r.counter("herald_publish_rejected_total", "Publish requests answered with an error, by its code",
                   {{"code", std::string(error_info(code).name)}});
  }
  for (std::size_t i = 0; i < kRefuseNames.size(); ++i) {
    refused[i] = &r.counter("herald_connections_refused_total", "WebSocket upgrades refused, by reason",
                            {{"reason", kRefuseNames[i]}});
  }
  for (std::size_t i = 0; i < kCloseReasons.size(); ++i) {
    closed[i] = &r.counter("herald_connections_closed_total", "WebSocket connections closed, by reason",
                           {{"reason", std::string(close_reason_name(kCloseReasons[i]))}});
  }
  ws.frames_in = &r.counter("herald_frames_in_total", "WebSocket frames received");
  ws.frames_out = &r.counter("herald_frames_out_total", "WebSocket frames sent");
  ws.bytes_in = &r.counter("herald_bytes_in_total", "WebSocket payload bytes received");
  ws.bytes_out = &r.counter("herald_bytes_out_total", "WebSocket payload bytes sent");
  ws.send_queue_bytes = &r.gauge("herald_send_queue_bytes", "Bytes queued to clients, all connections");
  ws.send_queue_full = &r.counter("herald_send_queue_full_total", "Sends refused because a client's queue was full");
  ws.parked = &r.gauge("herald_connections_parked",
                       "Open WebSocket connections parked: silent for park_after_ms, holding no frame-layer state");
  ws.unparks = &r.counter("herald_connection_unparks_total",
                          "Parked connections woken by a client frame or something to send");
  http.requests = &r.counter("herald_http_requests_total", "HTTP requests read");
  http.timeouts = &r.counter("herald_http_timeouts_total", "HTTP connections closed by header or idle timeout");
  http.bad_requests = &r.counter("herald_http_bad_requests_total", "Malformed or oversized HTTP requests");
  http.open = &r.gauge("herald_http_connections", "Open HTTP connections (before upgrade)");
  http.refused = &r.counter("herald_http_connections_refused_total",
                            "HTTP connections answered 429 and closed: max_http_connections were open");
  http.accept_errors = &r.counter("herald_accept_errors_total",
                                  "Failed accepts of new connections (out of file descriptors, mostly: "
                                  "retried every 50 ms)");
}

void GatewayMetrics::count_publish_rejected(errc code) {
  auto* c = publish_rejected[static_cast<std::size_t>(code)];
  (c != nullptr ? c : publish_rejected[static_cast<std::size_t>(errc::internal)])->inc();
}

std::uint64_t GatewayMetrics::publish_rejected_total() const {
  std::uint64_t sum = 0;
  for (const auto* c : publish_rejected) {
    if (c != nullptr) sum += c->value();
  }
  return sum;
}

metrics::Counter& GatewayMetrics::closed_counter(CloseReason reason) {
  for (std::size_t i = 0; i < kCloseReasons.size(); ++i) {
    if (kCloseReasons[i] == reason) return *closed[i];
  }
  return *closed[10];
}

}  // namespace herald::gateway
