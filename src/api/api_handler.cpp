// Routing, the operations routes and demo mode. The publish routes are in
// publish_route.cpp, the inspection routes in inspection_routes.cpp.
#include "api/api_handler.hpp"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "api/demo_token.hpp"
#include "api/json_replies.hpp"
#include "core/clock.hpp"
#include "core/text.hpp"

namespace herald::api {
namespace json = boost::json;
namespace http = boost::beast::http;
using transport::HttpRequest;
using transport::HttpResponse;

ApiHandler::ApiHandler(gateway::GatewayContext& ctx, gateway::PublishService& publisher,
                       gateway::DelayedMessages& delayed, const auth::ApiKeys& keys,
                       std::function<bool()> ready)
    : ctx_(ctx),
      publisher_(publisher),
      delayed_(delayed),
      keys_(keys),
      ready_(std::move(ready)),
      connect_(ctx),
      started_ms_(unix_ms_now()) {}

void ApiHandler::add_static(std::string path, std::string content_type, std::string body) {
  static_[std::move(path)] = StaticPage{std::move(content_type), std::move(body)};
}

std::variant<std::shared_ptr<transport::WsSession>, HttpResponse> ApiHandler::upgrade(
    const HttpRequest& request, const transport::RequestContext& rc) {
  return connect_.upgrade(request, rc);
}

void ApiHandler::handle(HttpRequest req, const transport::RequestContext& rctx,
                        transport::Responder respond) {
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) return respond(error(errc::bad_request, "malformed request target"));
  const std::string path = url->path();
  const auto method = req.method();

  // ---- unauthenticated operations routes
  const bool ops_route = path == "/healthz" || path == "/readyz" || path == "/metrics" || static_.contains(path);
  if (ops_route && method != http::verb::get) return respond(not_allowed(http::verb::get));
  if (path == "/healthz") {
    return respond(json_response(http::status::ok, json::object{{"status", "ok"}}));
  }
  if (path == "/readyz") {
    const bool draining = ctx_.draining.load(std::memory_order_relaxed);
    const bool store_ok = ctx_.store.healthy();
    if (!draining && store_ok && ready_()) {
      return respond(json_response(http::status::ok, json::object{{"ready", true}}));
    }
    json::object body{{"ready", false}, {"draining", draining}, {"store", store_ok}};
    return respond(json_response(http::status::service_unavailable, body));
  }
  if (path == "/metrics") {
    HttpResponse res{http::status::ok, 11};
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = ctx_.metrics.registry.expose();
    return respond(std::move(res));
  }
  if (auto page = static_.find(path); page != static_.end()) {
    HttpResponse res{http::status::ok, 11};
    res.set(http::field::content_type, page->second.content_type);
    res.set(http::field::cache_control, "no-cache");
    res.set("x-content-type-options", "nosniff");
    // The pages hold an API key: only their own scripts run, nothing
    // loads from elsewhere, and no other site may frame them.
    res.set("content-security-policy",
            "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    res.body() = page->second.body;
    return respond(std::move(res));
  }
  if (ctx_.config.demo && (path == "/demo/token" || path == "/demo/publish")) {
    if (method != http::verb::post) return respond(not_allowed(http::verb::post));
    if (path == "/demo/publish") return publish(req, false, rctx.worker, std::move(respond));
    return respond(demo_token(req));
  }
  if (!path.starts_with("/v1/")) return respond(error(errc::not_found, "no such route"));
  if (path == "/v1/ws") {
    // Only an upgrade belongs here, and those never reach this handler.
    auto res = error(errc::upgrade_required, "this endpoint takes a WebSocket upgrade");
    res.set(http::field::upgrade, "websocket");
    res.set(http::field::connection, "Upgrade");
    return respond(std::move(res));
  }

  // ---- everything under /v1/ needs a key (PROTOCOL.md 7, 8)
  auto auth = req.find(http::field::authorization);
  if (auth == req.end() || !keys_.check_authorization(auth->value())) {
    ctx_.metrics.api_unauthorized.inc();
    if (path == "/v1/publish" || path == "/v1/publish/batch") {
      ctx_.metrics.publish_requests.inc();
      ctx_.metrics.count_publish_rejected(errc::unauthorized);
    }
    return respond(error(errc::unauthorized, auth == req.end() ? "missing API key" : "invalid API key"));
  }

  if (path == "/v1/publish" || path == "/v1/publish/batch") {
    if (method != http::verb::post) return respond(not_allowed(http::verb::post));
    return publish(req, path == "/v1/publish/batch", rctx.worker, std::move(respond));
  }
  if (path == "/v1/stats") {
    if (method != http::verb::get) return respond(not_allowed(http::verb::get));
    return respond(stats());
  }
  // Store reads answer empty when the store is down (redis gone): check
  // after reading, so that no empty or 404 answer stands for an outage.
  const auto from_store = [this, &respond](HttpResponse res) {
    if (!ctx_.store.healthy()) return respond(error(errc::store_unavailable, "store unavailable"));
    respond(std::move(res));
  };
  if (path == "/v1/dead-letters") {
    if (method != http::verb::get) return respond(not_allowed(http::verb::get));
    return from_store(dead_letters(req));
  }
  // /v1/users/{user}/...
  const auto segs = url->segments();  // percent-decoded
  std::vector<std::string> parts(segs.begin(), segs.end());
  if (parts.size() >= 4 && parts[0] == "v1" && parts[1] == "users") {
    const std::string& user = parts[2];
    if (!is_valid_user_id(user)) {
      return respond(error(errc::bad_request, "user must be 1..128 bytes of UTF-8 without control characters", "user"));
    }
    if (parts.size() == 4 && parts[3] == "presence") {
      if (method != http::verb::get) return respond(not_allowed(http::verb::get));
      return from_store(presence(user));
    }
    if (parts.size() == 4 && parts[3] == "messages") {
      if (method != http::verb::get) return respond(not_allowed(http::verb::get));
      return from_store(messages(user, req));
    }
    if (parts.size() == 5 && parts[3] == "messages") {
      if (method != http::verb::get) return respond(not_allowed(http::verb::get));
      return from_store(message(user, parts[4]));
    }
    if (parts.size() == 4 && parts[3] == "connections") {
      if (method != http::verb::delete_) return respond(not_allowed(http::verb::delete_));
      return respond(kick(user, req));
    }
  }
  respond(error(errc::not_found, "no such route"));
}

// ---- demo mode (config `demo`) -------------------------------------------------

HttpResponse ApiHandler::demo_token(const HttpRequest& req) {
  auto minted = mint_demo_token(ctx_.config, req.body(), unix_ms_now());
  if (auto* e = std::get_if<ItemError>(&minted)) return error(e->code, e->message, e->field);
  const auto& t = std::get<DemoToken>(minted);
  return json_response(http::status::ok,
                       json::object{{"token", t.token}, {"user", t.user}, {"exp", t.exp}});
}

HttpResponse ApiHandler::stats() {
  auto& m = ctx_.metrics;
  json::object o;
  o["node"] = ctx_.config.node_id;
  o["uptime_ms"] = unix_ms_now() - started_ms_;
  o["draining"] = ctx_.draining.load(std::memory_order_relaxed);
  o["connections"] = m.connections_active.value();
  o["users_online"] = ctx_.hub.users();
  o["messages"] = json::object{{"published", m.messages_published.value()},
                               {"duplicates", m.messages_duplicate.value()},
                               {"delivered", m.messages_delivered.value()},
                               {"redelivered", m.messages_redelivered.value()},
                               {"acked", m.messages_acked.value()},
                               {"inflight", m.inflight.value()},
                               {"scheduled", delayed_.pending()},
                               {"dead_letters", ctx_.store.dead_letter_count()}};
  // From the store's background census (docs/metrics.md): every node
  // reports the whole store's backlog.
  o["offline_backlog"] = json::object{{"messages", m.offline_backlog_messages.value()},
                                      {"users", m.offline_backlog_users.value()}};
  o["publish_requests"] = json::object{{"total", m.publish_requests.value()},
                                       {"rejected", m.publish_rejected_total()}};
  // Quantiles since start, plus the cumulative bucket counts so that a
  // dashboard can take quantiles over its own window from two snapshots.
  auto pct = [](const metrics::Histogram& h) {
    json::array bounds_ms;
    for (double b : h.bounds()) bounds_ms.push_back(b * 1000);
    json::array counts;
    for (auto c : h.cumulative_counts()) counts.push_back(c);
    // No observations yet: null, as JSON has no NaN.
    auto ms = [&h](double q) {
      const double v = h.quantile(q);
      return std::isnan(v) ? json::value(nullptr) : json::value(v * 1000);
    };
    return json::object{{"count", h.count()},
                        {"p50_ms", ms(0.5)},
                        {"p90_ms", ms(0.9)},
                        {"p99_ms", ms(0.99)},
                        {"bounds_ms", std::move(bounds_ms)},
                        {"cumulative_counts", std::move(counts)}};
  };
  o["push_latency"] = pct(m.push_latency);
  o["ack_latency"] = pct(m.ack_latency);
  o["publish_latency"] = pct(m.publish_latency);
  o["heartbeat_rtt"] = pct(m.heartbeat_rtt);
  o["ack_timeouts"] = m.ack_timeouts.value();
  return json_response(http::status::ok, o);
}

}  // namespace herald::api
