// The inspection and operations routes under /v1/users and /v1/dead-letters
// (PROTOCOL.md 8): what the store holds, merged with what this node's
// connections and the cluster's presence know.
#include "api/api_handler.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "api/json_replies.hpp"
#include "core/clock.hpp"

namespace herald::api {
namespace json = boost::json;
namespace http = boost::beast::http;
using transport::HttpRequest;
using transport::HttpResponse;

namespace {

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
  if (ctx_.attempts.acked_above_cursor(user, d.device, seq)) return "acked";
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
  const auto dead_letter = m ? std::nullopt : ctx_.store.dead_letter(user, seq);
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
    // One already closing (kicked before, its client slow to let go) is
    // not closed again, nor counted (presence no longer lists it either).
    if (c->info().closing) continue;
    c->kick(CloseReason::kicked);
    ++closed;
  }
  // Several nodes: theirs close too, asynchronously; `closed` counts this
  // node's. With Redis unreachable the other nodes cannot be told: 503, so
  // the operator retries (this node's connections are closed already).
  if (ctx_.remote_kick && !ctx_.remote_kick(std::string(user), device)) {
    return error(errc::store_unavailable, "closed " + std::to_string(closed) +
                                              " connection(s) on this node; the other nodes could not be reached");
  }
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

}  // namespace herald::api
