#include "gateway/connect_handler.hpp"

#include <charconv>

#include <boost/url/parse.hpp>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "gateway/connection.hpp"

namespace herald::gateway {
namespace http = boost::beast::http;

bool valid_device_id(std::string_view d) {
  if (d.empty() || d.size() > 64) return false;
  for (char c : d) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

// Value of cookie `name` in a Cookie header, if present.
std::optional<std::string> cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    auto semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      return std::string(pair.substr(eq + 1));
    }
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return std::nullopt;
}

}  // namespace

transport::HttpResponse ConnectHandler::refuse(RefuseReason why, errc code, std::string_view message,
                                               std::string_view field) {
  ctx_.metrics.refused_counter(why).inc();
  transport::HttpResponse res{static_cast<http::status>(error_info(code).http_status), 11};
  res.set(http::field::content_type, "application/json");
  if (error_info(code).http_status == 429) res.set(http::field::retry_after, "1");
  res.body() = error_body(code, message, field);
  return res;
}

std::variant<std::shared_ptr<transport::WsHandler>, transport::HttpResponse> ConnectHandler::upgrade(
    const transport::HttpRequest& req, const transport::RequestContext& rc) {
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url || url->path() != "/v1/ws") {
    return refuse(RefuseReason::not_found, errc::not_found, "no WebSocket endpoint here");
  }
  if (ctx_.draining.load(std::memory_order_relaxed)) {
    return refuse(RefuseReason::draining, errc::draining, "server is draining");
  }
  if (!ctx_.store.healthy()) {
    return refuse(RefuseReason::store_unavailable, errc::store_unavailable, "store unavailable");
  }
  const auto params = url->params();

  // Token: the first source present wins, no fallback (PROTOCOL.md 10).
  std::optional<std::string> token;
  if (auto it = req.find(http::field::authorization); it != req.end()) {
    std::string_view v = it->value();
    token = v.size() > 7 && (v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer ")
                ? std::string(v.substr(7))
                : std::string();
  } else if (auto p = params.find("token"); p != params.end()) {
    token = (*p).value;
  } else if (auto c = req.find(http::field::cookie); c != req.end()) {
    token = cookie_value(c->value(), "herald_token");
  }
  if (!token) return refuse(RefuseReason::unauthorized, errc::unauthorized, "missing token");
  auto claims = ctx_.jwt.verify(*token, unix_ms_now());
  if (!claims) {
    return refuse(RefuseReason::unauthorized, errc::unauthorized,
                  auth::jwt_error_message(claims.error()));
  }

  ConnectionParams cp;
  cp.user = claims->sub;
  cp.token_exp = claims->exp;
  cp.remote_ip = rc.remote_ip;
  if (auto p = params.find("device"); p != params.end()) {
    cp.device = (*p).value;
    if (!valid_device_id(cp.device)) {
      return refuse(RefuseReason::bad_request, errc::bad_request,
                    "device must be 1..64 characters of [A-Za-z0-9._:-]", "device");
    }
  } else if (claims->dev && valid_device_id(*claims->dev)) {
    cp.device = *claims->dev;
  } else {
    cp.device = "default";
  }
  if (auto p = params.find("last_seq"); p != params.end()) {
    const std::string v = (*p).value;
    std::uint64_t seq = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), seq);
    if (v.empty() || ec != std::errc{} || end != v.data() + v.size()) {
      return refuse(RefuseReason::bad_request, errc::bad_request,
                    "last_seq must be a non-negative integer", "last_seq");
    }
    cp.resume.last_seq = seq;
  }
  if (auto p = params.find("epoch"); p != params.end()) {
    cp.resume.epoch = std::string((*p).value);
    if (cp.resume.epoch->size() > 128) {
      return refuse(RefuseReason::bad_request, errc::bad_request, "epoch too long", "epoch");
    }
  }

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

  switch (ctx_.limits.acquire(rc.remote_ip)) {
    case ConnectionLimits::Admit::ok: break;
    case ConnectionLimits::Admit::ip_limit:
      return refuse(RefuseReason::ip_limit, errc::too_many_connections, "too many connections from this address");
    case ConnectionLimits::Admit::global_limit:
      return refuse(RefuseReason::global_limit, errc::too_many_connections, "server connection limit reached");
  }

  cp.conn_id = "c-" + random_hex(6);
  auto conn = std::make_shared<Connection>(ctx_, *rc.worker, cp);
  auto added = ctx_.hub.add(cp.user, conn, ctx_.config.max_connections_per_user);
  if (added.result == hub::Hub::AddResult::user_limit) {
    ctx_.limits.release(rc.remote_ip);
    return refuse(RefuseReason::user_limit, errc::too_many_connections, "too many connections for this user");
  }
  if (added.replaced) added.replaced->kick(CloseReason::replaced);
  if (ctx_.remote_replace) ctx_.remote_replace(cp.user, conn->device(), conn->info().connected_at_ms);
  if (ctx_.presence != nullptr) {
    ctx_.presence->connected(cp.user, conn->device(), cp.conn_id, conn->info().connected_at_ms);
  }
  return std::shared_ptr<transport::WsHandler>(conn);
}

}  // namespace herald::gateway
