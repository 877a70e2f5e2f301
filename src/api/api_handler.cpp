#include "api/api_handler.hpp"

#include <charconv>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "api/demo_token.hpp"
#include "core/clock.hpp"
#include "core/text.hpp"

namespace herald::api {
namespace json = boost::json;
namespace http = boost::beast::http;
using transport::HttpRequest;
using transport::HttpResponse;

namespace {

HttpResponse json_response(http::status status, std::string body) {
  HttpResponse res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  return res;
}

HttpResponse json_response(http::status status, const json::value& v) {
  return json_response(status, json::serialize(v));
}

HttpResponse error(errc code, std::string_view message, std::string_view field = {}) {
  return json_response(static_cast<http::status>(error_info(code).http_status),
                       error_body(code, message, field));
}

// 405 naming the method the route has (RFC 9110: with `Allow`); a GET
// route answers HEAD too (transport::HttpSession).
HttpResponse not_allowed(http::verb allowed) {
  const std::string name(http::to_string(allowed));
  auto res = error(errc::method_not_allowed, "use " + name);
  res.set(http::field::allow, allowed == http::verb::get ? "GET, HEAD" : name);
  return res;
}

json::object error_object(const ItemError& e) {
  json::object err;
  err["code"] = error_info(e.code).name;
  err["message"] = e.message;
  if (!e.field.empty()) err["field"] = e.field;
  return json::object{{"error", std::move(err)}};
}

// Query parameter as an unsigned integer (nullopt when absent; error when malformed).
struct UintParam {
  std::optional<std::uint64_t> value;
  bool bad = false;
};
UintParam uint_param(const boost::urls::params_view& params, std::string_view name) {
  auto it = params.find(name);
  if (it == params.end()) return {};
  const std::string v = (*it).value;
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc{} || end != v.data() + v.size()) return {std::nullopt, true};
  return {n, false};
}

// `data` goes out as the text it was published with (PROTOCOL.md 10:
// integers keep their exact value): a Boost.JSON value would hold
// 12345678901234567890123 as a double. So the document is serialized
// without it and the stored text is added as the object's last member.
// The text was validated as JSON when it was published.
std::string with_raw_member(const json::object& o, std::string_view key, std::string_view raw_json) {
  std::string out = json::serialize(o);
  out.pop_back();  // the closing brace
  if (!o.empty()) out += ',';
  out += json::serialize(json::string(key));
  out += ':';
  out += raw_json.empty() ? std::string_view("null") : raw_json;
  out += '}';
  return out;
}

std::string array_text(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += items[i];
  }
  out += ']';
  return out;
}

constexpr std::size_t kDefaultPageLimit = 100;
constexpr std::size_t kMaxPageLimit = 1000;

// ?after=N&limit=M of the listing routes (PROTOCOL.md 8).
struct Page {
  std::uint64_t after = 0;
  std::size_t limit = kDefaultPageLimit;
};
std::variant<Page, HttpResponse> parse_page(const HttpRequest& req) {
  auto url = boost::urls::parse_origin_form(req.target());
  const auto params = url->params();
  auto after = uint_param(params, "after");
  auto limit = uint_param(params, "limit");
  if (after.bad) return error(errc::bad_request, "after must be a non-negative integer", "after");
  if (limit.bad || (limit.value && *limit.value == 0)) {
    return error(errc::bad_request, "limit must be a positive integer", "limit");
  }
  return Page{after.value.value_or(0),
              std::min<std::size_t>(limit.value.value_or(kDefaultPageLimit), kMaxPageLimit)};
}

}  // namespace

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

// ---- publishing -----------------------------------------------------------------

std::optional<double> ApiHandler::publish_rate_wait(std::string_view key) {
  if (ctx_.config.publish_rate <= 0) return std::nullopt;
  std::lock_guard lock(rate_mu_);
  auto it = rate_.find(key);
  if (it == rate_.end()) {
    const double rate = ctx_.config.publish_rate;
    it = rate_.emplace(std::string(key), TokenBucket(rate, std::max(1.0, rate))).first;
  }
  if (it->second.try_take()) return std::nullopt;
  return it->second.seconds_until_available();
}

void ApiHandler::publish(const HttpRequest& req, bool batch, transport::IoWorker* worker,
                         transport::Responder respond) {
  ctx_.metrics.publish_requests.inc();
  auto reject = [this, &respond](HttpResponse res) {
    ctx_.metrics.publish_rejected.inc();
    respond(std::move(res));
  };
  if (ctx_.draining.load(std::memory_order_relaxed)) {
    return reject(error(errc::draining, "server is draining"));
  }
  std::string_view key = req[http::field::authorization];
  key.remove_prefix(std::min<std::size_t>(7, key.size()));
  if (auto wait = publish_rate_wait(key)) {
    auto res = error(errc::rate_limited, "publish rate limit exceeded");
    res.set(http::field::retry_after, std::to_string(std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(*wait)))));
    return reject(std::move(res));
  }

  std::string traceparent;
  if (auto tp = req.find("traceparent"); tp != req.end()) traceparent = trace_id_from_traceparent(tp->value());
  const PublishLimits limits{ctx_.config.max_message_bytes, ctx_.config.max_publish_users,
                             ctx_.config.max_batch_messages};
  auto parsed = parse_publish_body(req.body(), batch, limits, traceparent, unix_ms_now());
  if (auto* e = std::get_if<ItemError>(&parsed)) return reject(error(e->code, e->message, e->field));
  auto& items = std::get<ParsedItems>(parsed);
  if (!batch) {
    if (auto* e = std::get_if<ItemError>(&items[0])) return reject(error(e->code, e->message, e->field));
  }

  // Scheduled items answer now; the rest go to the store in one commit.
  struct Slot {
    std::size_t item;
    std::size_t count;
  };
  auto results = std::make_shared<std::vector<json::value>>(items.size());
  std::vector<store::NewMessage> to_append;
  auto users = std::make_shared<std::vector<std::string>>();
  std::vector<Slot> slots;
  bool overloaded = false;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (auto* e = std::get_if<ItemError>(&items[i])) {
      (*results)[i] = error_object(*e);
      continue;
    }
    auto& item = std::get<PublishItem>(items[i]);
    if (item.deliver_at) {
      json::array per_user;
      for (auto& m : item.messages) {
        json::object r{{"user", m.user}, {"id", m.id}};
        std::string user = m.user, id = m.id;
        switch (delayed_.schedule(std::move(m), *item.deliver_at)) {
          case gateway::DelayedMessages::Result::scheduled: r["scheduled"] = true; break;
          case gateway::DelayedMessages::Result::duplicate:
            r["scheduled"] = true;
            r["duplicate"] = true;
            break;
          case gateway::DelayedMessages::Result::full:
            overloaded = true;
            r = error_object(ItemError{errc::overloaded, "too many scheduled messages", ""});
            break;
          case gateway::DelayedMessages::Result::unavailable:
            r = error_object(ItemError{errc::store_unavailable, "store unavailable", ""});
            break;
        }
        per_user.push_back(std::move(r));
      }
      if (item.multi_user) (*results)[i] = json::object{{"results", std::move(per_user)}};
      else (*results)[i] = std::move(per_user[0]);
      continue;
    }
    slots.push_back({i, item.messages.size()});
    for (auto& m : item.messages) {
      users->push_back(m.user);
      to_append.push_back(std::move(m));
    }
  }
  // multi_user flags by item index, for shaping results later.
  auto multi = std::make_shared<std::vector<bool>>(items.size(), false);
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (auto* it = std::get_if<PublishItem>(&items[i])) (*multi)[i] = it->multi_user;
  }

  auto finish = [this, results, batch, respond](bool rejected) {
    if (!batch) {
      const json::value& only = (*results)[0];
      if (only.is_object() && only.as_object().contains("error")) {
        ctx_.metrics.publish_rejected.inc();
        const auto& code = only.as_object().at("error").as_object().at("code").as_string();
        const int status = code == "overloaded" ? 429 : code == "store_unavailable" ? 503 : 400;
        auto res = json_response(static_cast<http::status>(status), json::serialize(only));
        if (status == 429) res.set(http::field::retry_after, "1");
        return respond(std::move(res));
      }
      if (only.is_object() && only.as_object().contains("results")) {
        return respond(json_response(http::status::ok, only));
      }
      return respond(json_response(http::status::ok, json::object{{"results", json::array{only}}}));
    }
    (void)rejected;
    json::array arr(results->begin(), results->end());
    respond(json_response(http::status::ok, json::object{{"results", std::move(arr)}}));
  };

  if (to_append.empty()) return finish(overloaded);

  // The answer is built from the outcomes on the request's own I/O thread:
  // the store worker is the serial stage of every publish and only hands it over.
  auto answer = [results, users, slots = std::move(slots), multi, finish](std::vector<store::AppendOutcome> outcomes) {
    std::size_t pos = 0;
    for (const auto& slot : slots) {
      json::array per_user;
      for (std::size_t k = 0; k < slot.count; ++k, ++pos) {
        const auto& o = outcomes[pos];
        if (const auto* r = std::get_if<store::AppendResult>(&o)) {
          per_user.push_back(json::object{});
          auto& obj = per_user.back().as_object();
          obj["user"] = (*users)[pos];
          if (r->scheduled) {
            // Still scheduled: answered as a scheduled publish of that id is.
            obj["id"] = r->id;
            obj["scheduled"] = true;
            obj["duplicate"] = true;
            continue;
          }
          obj["seq"] = r->seq;
          obj["id"] = r->id;
          obj["duplicate"] = r->duplicate;
        } else {
          const errc code = std::get<errc>(o);
          // Shed by its priority while the rest of the batch went in (PROTOCOL.md 7).
          per_user.push_back(error_object(ItemError{
              code, code == errc::overloaded ? "store queue is full, retry later" : "store unavailable", ""}));
        }
      }
      (*results)[slot.item] = (*multi)[slot.item] ? json::value(json::object{{"results", std::move(per_user)}})
                                                  : std::move(per_user[0]);
    }
    finish(false);
  };
  const bool queued = publisher_.publish(
      std::move(to_append), [worker, answer = std::move(answer)](std::vector<store::AppendOutcome> outcomes) mutable {
        if (worker == nullptr) return answer(std::move(outcomes));
        boost::asio::post(worker->context(), [answer = std::move(answer), outcomes = std::move(outcomes)]() mutable {
          answer(std::move(outcomes));
        });
      });
  if (!queued) {
    auto res = error(errc::overloaded, "store queue is full, retry later");
    res.set(http::field::retry_after, "1");
    return reject(std::move(res));
  }
}

// ---- inspection ---------------------------------------------------------------

std::vector<ApiHandler::DeviceView> ApiHandler::device_views(std::string_view user) {
  std::vector<DeviceView> out;
  for (const auto& c : ctx_.store.cursors(user)) out.push_back({c.device, c.cursor, false, 0});
  for (const auto& conn : ctx_.hub.connections(user)) {
    const auto info = conn->info();
    auto it = std::find_if(out.begin(), out.end(), [&](const DeviceView& d) { return d.device == info.device; });
    if (it == out.end()) it = out.insert(out.end(), DeviceView{info.device, 0, false, 0});
    it->online = true;
    it->cursor = std::max(it->cursor, info.cursor);
    it->last_sent = info.last_sent;
  }
  if (ctx_.presence != nullptr) {
    // Connected to another node: online, though what was sent to it (so
    // inflight, and attempts) only that node knows (docs/protocol.md).
    for (const auto& r : ctx_.presence->remote(std::string(user))) {
      auto it = std::find_if(out.begin(), out.end(), [&](const DeviceView& d) { return d.device == r.device; });
      if (it == out.end()) it = out.insert(out.end(), DeviceView{r.device, 0, false, 0});
      it->online = true;
    }
  }
  return out;
}

// PROTOCOL.md 10: sends over all of the device's connections. The ledger
// lets go of a count at the ack unless the message was sent more than
// once; an acked message was sent at least once.
std::uint32_t ApiHandler::attempts_of(std::string_view user, std::string_view device, std::uint64_t seq,
                                      std::string_view state) const {
  const std::uint32_t n = ctx_.attempts.attempts(user, device, seq);
  return state == "acked" ? std::max<std::uint32_t>(n, 1) : n;
}

const char* ApiHandler::device_state(std::string_view user, const DeviceView& d, std::uint64_t seq, bool retained,
                                     bool dead) const {
  if (seq <= d.cursor) return "acked";
  if (retained && d.online && ctx_.attempts.acked_above_cursor(user, d.device, seq)) return "acked";
  if (!retained) return dead ? "dead" : "expired";
  if (d.online && seq <= d.last_sent) return "inflight";
  return "pending";
}

HttpResponse ApiHandler::presence(std::string_view user) {
  json::array devices;
  for (const auto& c : ctx_.hub.connections(user)) {
    const auto i = c->info();
    if (i.closing) continue;
    json::object d{{"device", i.device},
                   {"conn_id", i.conn_id},
                   {"node", ctx_.config.node_id},
                   {"connected_at", i.connected_at_ms},
                   {"cursor", i.cursor}};
    d["rtt_ms"] = i.rtt_ms ? json::value(*i.rtt_ms) : json::value(nullptr);
    devices.push_back(std::move(d));
  }
  if (ctx_.presence != nullptr) {
    // Devices on the other nodes: their RTT is known only there; the cursor
    // is the stored one.
    for (const auto& r : ctx_.presence->remote(std::string(user))) {
      devices.push_back(json::object{{"device", r.device},
                                     {"conn_id", r.conn_id},
                                     {"node", r.node},
                                     {"connected_at", r.connected_at_ms},
                                     {"rtt_ms", nullptr},
                                     {"cursor", ctx_.store.cursor(user, r.device).value_or(0)}});
    }
  }
  return json_response(http::status::ok, json::object{{"user", user}, {"devices", std::move(devices)}});
}

HttpResponse ApiHandler::messages(std::string_view user, const HttpRequest& req) {
  const auto page = parse_page(req);
  if (auto* refusal = std::get_if<HttpResponse>(&page)) return std::move(*refusal);
  const auto [after_seq, n] = std::get<Page>(page);
  const auto msgs = ctx_.store.read_after(user, after_seq, n, unix_ms_now());
  const auto devices = device_views(user);
  std::vector<std::string> out;
  for (const auto& m : msgs) {
    json::array per_device;
    json::array acked_by;
    for (const auto& d : devices) {
      const char* state = device_state(user, d, m->seq, true, false);
      if (state == std::string_view("acked")) acked_by.push_back(json::string(d.device));
      per_device.push_back(json::object{{"device", d.device}, {"state", state},
                                        {"attempts", attempts_of(user, d.device, m->seq, state)}});
    }
    json::object o{{"seq", m->seq},         {"id", m->id},
                   {"event", m->event},     {"ts", m->ts_ms},
                   {"trace_id", m->trace_id}, {"expires_at", m->expires_at_ms},
                   {"acked_by", std::move(acked_by)}, {"devices", std::move(per_device)}};
    if (!m->collapse_key.empty()) o["collapse_key"] = m->collapse_key;
    out.push_back(with_raw_member(o, "data", m->data_json));
  }
  const std::uint64_t next = msgs.empty() ? after_seq : msgs.back()->seq;
  // Beyond the envelope of PROTOCOL.md 10: every known device with its
  // cursor, so that a page of messages can be read against them.
  json::array known;
  for (const auto& d : devices) {
    known.push_back(json::object{{"device", d.device}, {"cursor", d.cursor}, {"online", d.online}});
  }
  return json_response(http::status::ok,
                       with_raw_member(json::object{{"next_after", next}, {"devices", std::move(known)}},
                                       "messages", array_text(out)));
}

HttpResponse ApiHandler::message(std::string_view user, std::string_view seq_text) {
  std::uint64_t seq = 0;
  auto [end, ec] = std::from_chars(seq_text.data(), seq_text.data() + seq_text.size(), seq);
  if (ec != std::errc{} || end != seq_text.data() + seq_text.size()) {
    return error(errc::bad_request, "seq must be a positive integer", "seq");
  }
  const auto inbox = ctx_.store.state(user);
  if (seq == 0 || seq > inbox.head_seq) return error(errc::not_found, "no such message in this inbox");
  const auto m = ctx_.store.get(user, seq);
  std::optional<store::DeadLetter> dead_letter;
  if (!m) {
    for (auto& d : ctx_.store.dead_letters(0, 100000)) {
      if (d.user == user && d.seq == seq) dead_letter = std::move(d);
    }
  }
  const bool dead = dead_letter.has_value();
  // States from least to most advanced; the top level is the least advanced
  // over the user's known devices (PROTOCOL.md 10).
  static constexpr const char* kOrder[] = {"dead", "expired", "pending", "inflight", "acked"};
  auto rank = [](std::string_view st) {
    for (int i = 0; i < 5; ++i) {
      if (st == kOrder[i]) return i;
    }
    return 0;
  };
  json::array devices;
  json::array acked_by;
  int least = 4;
  for (const auto& d : device_views(user)) {
    const char* state = device_state(user, d, seq, m != nullptr, dead);
    if (state == std::string_view("acked")) acked_by.push_back(json::string(d.device));
    least = std::min(least, rank(state));
    devices.push_back(json::object{{"device", d.device}, {"state", state},
                                   {"attempts", attempts_of(user, d.device, seq, state)}});
  }
  if (devices.empty()) least = !m ? (dead ? 0 : 1) : 2;
  json::object o{{"seq", seq}, {"state", kOrder[least]}, {"acked_by", std::move(acked_by)},
                 {"devices", std::move(devices)}};
  if (m) {
    o["id"] = m->id;
    o["event"] = m->event;
    o["ts"] = m->ts_ms;
    o["trace_id"] = m->trace_id;
    return json_response(http::status::ok, with_raw_member(o, "data", m->data_json));
  }
  if (dead_letter) {
    // Gone from the inbox, kept in the dead-letter log.
    o["id"] = dead_letter->message_id;
    o["event"] = dead_letter->event;
    o["ts"] = dead_letter->ts_ms;
    return json_response(http::status::ok, with_raw_member(o, "data", dead_letter->data_json));
  }
  // Gone after every device acked it, collapsed, or expired with nobody
  // behind: the inbox no longer knows its id.
  o["id"] = nullptr;
  return json_response(http::status::ok, o);
}

HttpResponse ApiHandler::kick(std::string_view user, const HttpRequest& req) {
  auto url = boost::urls::parse_origin_form(req.target());
  const auto params = url->params();
  std::optional<std::string> device;
  if (auto it = params.find("device"); it != params.end()) device = std::string((*it).value);
  std::size_t closed = 0;
  for (const auto& c : ctx_.hub.connections(user)) {
    if (device && c->device() != *device) continue;
    c->kick(CloseReason::kicked);
    ++closed;
  }
  // Several nodes: theirs close too, asynchronously; `closed` counts this node's.
  if (ctx_.remote_kick) ctx_.remote_kick(std::string(user), device);
  return json_response(http::status::ok, json::object{{"user", user}, {"closed", closed}});
}

HttpResponse ApiHandler::dead_letters(const HttpRequest& req) {
  const auto page = parse_page(req);
  if (auto* refusal = std::get_if<HttpResponse>(&page)) return std::move(*refusal);
  const auto [after_seq, n] = std::get<Page>(page);
  const auto list = ctx_.store.dead_letters(after_seq, n);
  std::vector<std::string> out;
  for (const auto& d : list) {
    out.push_back(with_raw_member(json::object{{"id", d.id},
                                               {"user", d.user},
                                               {"seq", d.seq},
                                               {"message_id", d.message_id},
                                               {"reason", store::dead_reason_name(d.reason)},
                                               {"event", d.event},
                                               {"ts", d.ts_ms},
                                               {"dead_at", d.dead_at_ms}},
                                  "data", d.data_json));
  }
  const std::uint64_t next = list.empty() ? after_seq : list.back().id;
  return json_response(http::status::ok,
                       with_raw_member(json::object{{"next_after", next}}, "dead_letters", array_text(out)));
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
                                       {"rejected", m.publish_rejected.value()}};
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
  o["heartbeat_rtt"] = pct(m.heartbeat_rtt);
  o["ack_timeouts"] = m.ack_timeouts.value();
  return json_response(http::status::ok, o);
}

}  // namespace herald::api
