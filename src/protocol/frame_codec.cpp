#include "protocol/frame_codec.hpp"

#include <boost/json.hpp>

#include "protocol/frame_fields.hpp"

namespace herald::protocol {
namespace json = boost::json;

namespace {

using Kind = FrameValue::Kind;
using K = FrameKey;

// A JSON number that is a non-negative integer, as uint64.
std::optional<std::uint64_t> as_seq(const FrameValue& v) {
  if (v.kind == Kind::uint64) return v.u64;
  if (v.kind == Kind::int64 && v.i64 >= 0) return static_cast<std::uint64_t>(v.i64);
  if (v.kind == Kind::real) {
    const double d = v.real;
    if (d >= 0 && d < 1.8e19 && d == static_cast<double>(static_cast<std::uint64_t>(d)))
      return static_cast<std::uint64_t>(d);
  }
  return std::nullopt;
}

std::int64_t as_i64(const FrameValue& v) {
  if (v.kind == Kind::int64) return v.i64;
  if (v.kind == Kind::uint64) return static_cast<std::int64_t>(v.u64);
  if (v.kind == Kind::real) {
    // Out of int64's range the cast would be undefined: such a value is no
    // timestamp or count we use, so it reads as 0 like a missing field.
    const double d = v.real;
    return d >= -9223372036854775808.0 && d < 9223372036854775808.0 ? static_cast<std::int64_t>(d) : 0;
  }
  return 0;
}

std::string as_str(FrameValue& v) { return v.kind == Kind::string ? std::move(v.str) : std::string(); }

// A member passed on as JSON text; "null" when it was there without text.
std::string as_text(FrameValue& v) { return v.text.empty() ? std::string("null") : std::move(v.text); }

}  // namespace

std::string_view frame_error_message(FrameError e) {
  switch (e) {
    case FrameError::not_json: return "frame is not valid JSON";
    case FrameError::too_deep: return "frame nests JSON deeper than 256 levels";
    case FrameError::not_object: return "frame is not a JSON object";
    case FrameError::missing_type: return "frame has no type";
    case FrameError::type_not_string: return "frame type is not a string";
  }
  return "bad frame";
}

std::string json_quote(std::string_view text) { return json::serialize(json::string_view(text)); }

// ---- server side ------------------------------------------------------------

boost::system::result<ClientFrame, FrameError> decode_client_frame(std::string_view text) {
  auto parsed = FrameFields::parse(text);
  if (!parsed) return parsed.error();
  FrameFields& f = *parsed;
  std::string type = std::move(f[K::type].str);
  if (type == "ack") {
    AckFrame ack;
    ack.seq = as_seq(f[K::seq]);
    ack.upto = as_seq(f[K::upto]);
    if (!ack.seq && !ack.upto) {
      return ClientFrame{UnusableFrame{std::move(type), "invalid_frame",
                                       "ack needs a non-negative integer seq or upto"}};
    }
    return ClientFrame{ack};
  }
  if (type == "ping") {
    PingFrame ping;
    if (f[K::id].present()) ping.id_json = as_text(f[K::id]);
    if (f[K::ts].present()) ping.ts_json = as_text(f[K::ts]);
    return ClientFrame{std::move(ping)};
  }
  if (type == "refresh") {
    const FrameValue& tok = f[K::token];
    if (tok.kind != Kind::string || tok.str.empty()) {
      return ClientFrame{UnusableFrame{std::move(type), "invalid_frame", "refresh needs a token string"}};
    }
    return ClientFrame{RefreshFrame{std::move(f[K::token].str)}};
  }
  std::string message = "unknown frame type: " + type;
  return ClientFrame{UnusableFrame{std::move(type), "unknown_type", std::move(message)}};
}

std::string encode(const WelcomeFrame& f) {
  json::object o;
  o["type"] = "welcome";
  o["conn_id"] = f.conn_id;
  o["user"] = f.user;
  o["device"] = f.device;
  o["epoch"] = f.epoch;
  o["head_seq"] = f.head_seq;
  o["resume_from"] = f.resume_from;
  o["recovered"] = f.recovered;
  o["heartbeat_ms"] = f.heartbeat_ms;
  o["idle_timeout_ms"] = f.idle_timeout_ms;
  o["max_inflight"] = f.max_inflight;
  o["server_time"] = f.server_time;
  return json::serialize(o);
}

std::string encode(const MsgFrame& f) {
  // Built by hand around the stored data text so that `data` reaches the client
  // exactly as the publisher sent it (PROTOCOL.md 10: exact integers and strings).
  std::string out;
  out.reserve(96 + f.id.size() + f.event.size() + f.data_json.size() + f.trace_id.size());
  out += R"({"type":"msg","seq":)";
  out += std::to_string(f.seq);
  out += R"(,"id":)";
  out += json_quote(f.id);
  if (!f.event.empty()) {
    out += R"(,"event":)";
    out += json_quote(f.event);
  }
  out += R"(,"data":)";
  out += f.data_json.empty() ? std::string_view("null") : std::string_view(f.data_json);
  out += R"(,"ts":)";
  out += std::to_string(f.ts);
  out += R"(,"attempt":)";
  out += std::to_string(f.attempt);
  out += R"(,"trace_id":)";
  out += json_quote(f.trace_id);
  out += '}';
  return out;
}

std::string encode(const PongFrame& f) {
  std::string out = R"({"type":"pong")";
  if (!f.id_json.empty()) out += R"(,"id":)" + f.id_json;
  if (!f.ts_json.empty()) out += R"(,"ts":)" + f.ts_json;
  out += R"(,"server_time":)" + std::to_string(f.server_time) + "}";
  return out;
}

std::string encode(const ErrorFrame& f) {
  json::object o;
  o["type"] = "error";
  o["code"] = f.code;
  o["message"] = f.message;
  return json::serialize(o);
}

std::string encode(const RefreshedFrame& f) {
  json::object o;
  o["type"] = "refreshed";
  o["exp"] = f.exp;
  return json::serialize(o);
}

// ---- client side ------------------------------------------------------------

boost::system::result<ServerFrame, FrameError> decode_server_frame(std::string_view text) {
  auto parsed = FrameFields::parse(text);
  if (!parsed) return parsed.error();
  FrameFields& f = *parsed;
  const std::string& type = f[K::type].str;
  if (type == "msg") {
    MsgFrame m;
    m.seq = as_seq(f[K::seq]).value_or(0);
    m.id = as_str(f[K::id]);
    m.event = as_str(f[K::event]);
    // As sent: exact integers beyond 64 bits, 1e400 not turned into Infinity.
    if (f[K::data].present()) m.data_json = as_text(f[K::data]);
    m.ts = as_i64(f[K::ts]);
    m.attempt = static_cast<std::uint32_t>(as_i64(f[K::attempt]));
    m.trace_id = as_str(f[K::trace_id]);
    return ServerFrame{std::move(m)};
  }
  if (type == "welcome") {
    WelcomeFrame w;
    w.conn_id = as_str(f[K::conn_id]);
    w.user = as_str(f[K::user]);
    w.device = as_str(f[K::device]);
    w.epoch = as_str(f[K::epoch]);
    w.head_seq = as_seq(f[K::head_seq]).value_or(0);
    w.resume_from = as_seq(f[K::resume_from]).value_or(0);
    if (f[K::recovered].kind == Kind::boolean) w.recovered = f[K::recovered].boolean;
    w.heartbeat_ms = as_i64(f[K::heartbeat_ms]);
    w.idle_timeout_ms = as_i64(f[K::idle_timeout_ms]);
    w.max_inflight = static_cast<std::uint32_t>(as_i64(f[K::max_inflight]));
    w.server_time = as_i64(f[K::server_time]);
    return ServerFrame{std::move(w)};
  }
  if (type == "pong") {
    PongFrame p;
    if (f[K::id].present()) p.id_json = as_text(f[K::id]);
    if (f[K::ts].present()) p.ts_json = as_text(f[K::ts]);
    p.server_time = as_i64(f[K::server_time]);
    return ServerFrame{std::move(p)};
  }
  if (type == "error") return ServerFrame{ErrorFrame{as_str(f[K::code]), as_str(f[K::message])}};
  if (type == "refreshed") return ServerFrame{RefreshedFrame{as_i64(f[K::exp])}};
  return ServerFrame{UnknownServerFrame{type}};
}

std::string encode_ack(std::uint64_t seq) {
  return R"({"type":"ack","seq":)" + std::to_string(seq) + "}";
}

std::string encode_ack_upto(std::uint64_t upto) {
  return R"({"type":"ack","upto":)" + std::to_string(upto) + "}";
}

std::string encode_ping(std::int64_t id, std::int64_t ts) {
  return R"({"type":"ping","id":)" + std::to_string(id) + R"(,"ts":)" + std::to_string(ts) + "}";
}

std::string encode_refresh(std::string_view token) {
  return R"({"type":"refresh","token":)" + json_quote(token) + "}";
}

}  // namespace herald::protocol
