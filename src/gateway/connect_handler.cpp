#include "gateway/connect_handler.hpp"

#include <algorithm>
#include <cctype>
#include <optional>

#include "core/clock.hpp"
#include "gateway/connection.hpp"
#include "protocol/connect_request.hpp"

namespace herald::gateway {
namespace http = boost::beast::http;

transport::HttpResponse ConnectHandler::refuse(RefuseReason why, errc code, std::string_view message,
                                               std::string_view field) {
  ctx_.metrics.refused_counter(why).inc();
  transport::HttpResponse res{static_cast<http::status>(error_info(code).http_status), 11};
  res.set(http::field::content_type, "application/json");
  if (error_info(code).http_status == 429) res.set(http::field::retry_after, "1");
  // Draining: the node (or its replacement) is back within drain_retry_after.
  if (code == errc::draining) res.set(http::field::retry_after, drain_retry_after_seconds(ctx_.config));
  res.body() = error_body(code, message, field);
  return res;
}

namespace {

// RFC 6455 4.1: 16 random bytes in base64, so 22 characters of its
// alphabet and "==". Checked for shape only: the value is echoed hashed.
bool is_websocket_key(std::optional<std::string_view> key) {
  if (!key || key->size() != 24 || !key->ends_with("==")) return false;
  return std::all_of(key->begin(), key->end() - 2, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '/';
  });
}

transport::WsLimits ws_limits_from(const config::ServerConfig& config) {
  transport::WsLimits l;
  l.max_message_bytes = config.max_message_bytes;
  l.max_send_queue_bytes = config.max_send_queue_bytes;
  l.handshake_timeout = config.handshake_timeout;
  l.park_after = config.ws_park_after;
  return l;
}

}  // namespace

ConnectHandler::ConnectHandler(GatewayContext& ctx) : ctx_(ctx), ws_limits_(ws_limits_from(ctx.config)) {}

std::variant<std::shared_ptr<transport::WsSession>, transport::HttpResponse> ConnectHandler::upgrade(
    const transport::HttpRequest& req, const transport::RequestContext& rc) {
  auto header = [&req](http::field f) -> std::optional<std::string_view> {
    auto it = req.find(f);
    return it == req.end() ? std::nullopt : std::optional<std::string_view>(it->value());
  };
  const auto cr = protocol::parse_connect_request(req.target(), header(http::field::authorization),
                                                  header(http::field::cookie));
  if (!cr.path_ok) {
    return refuse(RefuseReason::not_found, errc::not_found, "no WebSocket endpoint here");
  }
  // What Beast's accept would refuse with a text body (RFC 6455 4.2.1):
  // answered here, as JSON like every refusal, and counted as one.
  if (header(http::field::sec_websocket_version) != std::optional<std::string_view>("13")) {
    auto res = refuse(RefuseReason::bad_request, errc::upgrade_required,
                      "Sec-WebSocket-Version must be 13", "Sec-WebSocket-Version");
    res.set(http::field::sec_websocket_version, "13");
    return res;
  }
  if (!is_websocket_key(header(http::field::sec_websocket_key))) {
    return refuse(RefuseReason::bad_request, errc::bad_request,
                  "Sec-WebSocket-Key must be 16 bytes in base64", "Sec-WebSocket-Key");
  }
  if (ctx_.draining.load(std::memory_order_relaxed)) {
    return refuse(RefuseReason::draining, errc::draining, "server is draining");
  }
  if (!ctx_.store.healthy()) {
    return refuse(RefuseReason::store_unavailable, errc::store_unavailable, "store unavailable");
  }
  // The token before the parameters: 401 comes before 400 (PROTOCOL.md 10).
  if (!cr.token) return refuse(RefuseReason::unauthorized, errc::unauthorized, "missing token");
  auto claims = ctx_.jwt.verify(*cr.token, unix_ms_now());
  if (!claims) {
    return refuse(RefuseReason::unauthorized, errc::unauthorized,
                  auth::jwt_error_message(claims.error()));
  }
  if (cr.param_error) {
    return refuse(RefuseReason::bad_request, errc::bad_request, cr.param_error->message, cr.param_error->field);
  }

  ConnectionParams cp;
  cp.user = claims->sub;
  cp.token_exp = claims->exp;
  if (cr.device) {
    cp.device = *cr.device;
  } else if (claims->dev && protocol::valid_device_id(*claims->dev)) {
    cp.device = *claims->dev;
  } else {
    cp.device = "default";
  }
  cp.resume.last_seq = cr.last_seq;
  cp.resume.epoch = cr.epoch;
  if (cr.attempt) cp.attempt = {hub::attempt_session_hash(cr.attempt->session), cr.attempt->n};

  const auto& origins = ctx_.config.allowed_origins;
  if (!origins.empty()) {
    // Browsers always send Origin; native clients send none and are not
    // subject to it (docs/protocol.md).
    if (auto o = req.find(http::field::origin); o != req.end()) {
      if (std::find(origins.begin(), origins.end(), o->value()) == origins.end()) {
        return refuse(RefuseReason::forbidden_origin, errc::forbidden_origin, "origin not allowed");
      }
    }
  }

  auto admission = ctx_.limits.acquire(rc.remote_ip);
  switch (admission.admit) {
    case ConnectionLimits::Admit::ok: break;
    case ConnectionLimits::Admit::ip_limit:
      return refuse(RefuseReason::ip_limit, errc::too_many_connections, "too many connections from this address");
    case ConnectionLimits::Admit::global_limit:
      return refuse(RefuseReason::global_limit, errc::too_many_connections, "server connection limit reached");
  }

  cp.limits_ticket = admission.ticket;
  auto conn = std::make_shared<Connection>(ctx_, *rc.worker, ws_limits_, cp);
  std::uint32_t per_user = ctx_.config.max_connections_per_user;
  if (ctx_.presence != nullptr) {
    // The limit is the user's across nodes: devices connected to other live
    // nodes count; one moving here from another node replaces, not adds.
    std::uint32_t elsewhere = 0;
    for (const auto& d : ctx_.presence->remote(cp.user)) elsewhere += d.device != conn->device() ? 1 : 0;
    per_user = elsewhere >= per_user ? 0 : per_user - elsewhere;
  }
  auto added = ctx_.hub.add(conn, per_user);
  if (added.result == hub::Hub::AddResult::user_limit) {
    ctx_.limits.release(admission.ticket);
    return refuse(RefuseReason::user_limit, errc::too_many_connections, "too many connections for this user");
  }
  if (added.result == hub::Hub::AddResult::stale) {
    // Its client gave up on it and is connected through a later attempt,
    // which must not be closed by this late arrival (docs/protocol.md).
    ctx_.limits.release(admission.ticket);
    return refuse(RefuseReason::stale_attempt, errc::stale_attempt,
                  "a later connection attempt of this client is already connected", "attempt");
  }
  if (added.replaced) {
    conn->set_replaced(added.replaced);
    added.replaced->kick(CloseReason::replaced);
  }
  const hub::ConnectStamp stamp{cp.attempt, conn->info().connected_at_ms, cp.conn_id.str()};
  // Presence first, then the message: a node whose connection of the device
  // stays (it is newer) hears the message after this entry is written and
  // writes its own over it (server.cpp), so presence names the one that lives.
  if (ctx_.presence != nullptr) ctx_.presence->connected(cp.user, conn->device(), stamp.conn_id, stamp.at_ms);
  if (ctx_.remote_replace) ctx_.remote_replace(cp.user, conn->device(), stamp);
  // A newer connection of the device made on another node while this one
  // was being set up found nothing here to close: this one goes now.
  if (ctx_.replaced_by_remote && ctx_.replaced_by_remote(cp.user, conn->device(), stamp)) {
    conn->kick(CloseReason::replaced);
  }
  return std::shared_ptr<transport::WsSession>(conn);
}

}  // namespace herald::gateway
