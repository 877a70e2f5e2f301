#include "protocol/frame_codec.hpp"

#include <boost/json.hpp>

#include "protocol/json_text.hpp"

namespace herald::protocol {
namespace json = boost::json;

namespace {

// Parses into a monotonic buffer: frames are small and short-lived.
boost::system::result<json::object, FrameError> parse_object(std::string_view text,
                                                             std::string& type) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return FrameError::not_json;
  if (!v.is_object()) return FrameError::not_object;
  auto& obj = v.as_object();
  auto* t = obj.if_contains("type");
  if (t == nullptr) return FrameError::missing_type;
  if (!t->is_string()) return FrameError::type_not_string;
  type = std::string(t->as_string());
  return std::move(obj);
}

// A JSON number that is a non-negative integer, as uint64.
std::optional<std::uint64_t> as_seq(const json::value* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_uint64()) return v->as_uint64();
  if (v->is_int64() && v->as_int64() >= 0) return static_cast<std::uint64_t>(v->as_int64());
  if (v->is_double()) {
    const double d = v->as_double();
    if (d >= 0 && d < 1.8e19 && d == static_cast<double>(static_cast<std::uint64_t>(d)))
      return static_cast<std::uint64_t>(d);
  }
  return std::nullopt;
}

std::int64_t as_i64(const json::value* v) {
  if (v == nullptr) return 0;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  if (v->is_double()) {
    // Out of int64's range the cast would be undefined: such a value is no
    // timestamp or count we use, so it reads as 0 like a missing field.
    const double d = v->as_double();
    return d >= -9223372036854775808.0 && d < 9223372036854775808.0 ? static_cast<std::int64_t>(d) : 0;
  }
  return 0;
}

std::string as_str(const json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key); v != nullptr && v->is_string()) return std::string(v->as_string());
  return {};
}

}  // namespace

std::string_view frame_error_message(FrameError e) {
  switch (e) {
    case FrameError::not_json: return "frame is not valid JSON";
    case FrameError::not_object: return "frame is not a JSON object";
    case FrameError::missing_type: return "frame has no type";
    case FrameError::type_not_string: return "frame type is not a string";
  }
  return "bad frame";
}

std::string json_quote(std::string_view text) { return json::serialize(json::string_view(text)); }

// ---- server side ------------------------------------------------------------

boost::system::result<ClientFrame, FrameError> decode_client_frame(std::string_view text) {
  std::string type;
  auto parsed = parse_object(text, type);
  if (!parsed) return parsed.error();
  const json::object& o = *parsed;
  if (type == "ack") {
    AckFrame ack;
    ack.seq = as_seq(o.if_contains("seq"));
    ack.upto = as_seq(o.if_contains("upto"));
    if (!ack.seq && !ack.upto) {
      return ClientFrame{UnusableFrame{type, "invalid_frame",
                                       "ack needs a non-negative integer seq or upto"}};
    }
    return ClientFrame{ack};
  }
  if (type == "ping") {
    PingFrame ping;
    if (o.contains("id")) ping.id_json = member_text(text, "id").value_or("null");
    if (o.contains("ts")) ping.ts_json = member_text(text, "ts").value_or("null");
    return ClientFrame{std::move(ping)};
  }
  if (type == "refresh") {
    auto* tok = o.if_contains("token");
    if (tok == nullptr || !tok->is_string() || tok->as_string().empty()) {
      return ClientFrame{UnusableFrame{type, "invalid_frame", "refresh needs a token string"}};
    }
    return ClientFrame{RefreshFrame{std::string(tok->as_string())}};
  }
  return ClientFrame{UnusableFrame{type, "unknown_type", "unknown frame type: " + type}};
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
  std::string type;
  auto parsed = parse_object(text, type);
  if (!parsed) return parsed.error();
  const json::object& o = *parsed;
  if (type == "msg") {
    MsgFrame m;
    m.seq = as_seq(o.if_contains("seq")).value_or(0);
    m.id = as_str(o, "id");
    m.event = as_str(o, "event");
    // As sent: exact integers beyond 64 bits, 1e400 not turned into Infinity.
    if (o.contains("data")) m.data_json = member_text(text, "data").value_or("null");
    m.ts = as_i64(o.if_contains("ts"));
    m.attempt = static_cast<std::uint32_t>(as_i64(o.if_contains("attempt")));
    m.trace_id = as_str(o, "trace_id");
    return ServerFrame{std::move(m)};
  }
  if (type == "welcome") {
    WelcomeFrame w;
    w.conn_id = as_str(o, "conn_id");
    w.user = as_str(o, "user");
    w.device = as_str(o, "device");
    w.epoch = as_str(o, "epoch");
    w.head_seq = as_seq(o.if_contains("head_seq")).value_or(0);
    w.resume_from = as_seq(o.if_contains("resume_from")).value_or(0);
    if (auto* r = o.if_contains("recovered"); r != nullptr && r->is_bool()) w.recovered = r->as_bool();
    w.heartbeat_ms = as_i64(o.if_contains("heartbeat_ms"));
    w.idle_timeout_ms = as_i64(o.if_contains("idle_timeout_ms"));
    w.max_inflight = static_cast<std::uint32_t>(as_i64(o.if_contains("max_inflight")));
    w.server_time = as_i64(o.if_contains("server_time"));
    return ServerFrame{std::move(w)};
  }
  if (type == "pong") {
    PongFrame p;
    if (o.contains("id")) p.id_json = member_text(text, "id").value_or("null");
    if (o.contains("ts")) p.ts_json = member_text(text, "ts").value_or("null");
    p.server_time = as_i64(o.if_contains("server_time"));
    return ServerFrame{std::move(p)};
  }
  if (type == "error") return ServerFrame{ErrorFrame{as_str(o, "code"), as_str(o, "message")}};
  if (type == "refreshed") return ServerFrame{RefreshedFrame{as_i64(o.if_contains("exp"))}};
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
