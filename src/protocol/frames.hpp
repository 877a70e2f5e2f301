#pragma once
// Typed frames of PROTOCOL.md section 3, both directions. Plain data, no I/O.
#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include <boost/json/value.hpp>

namespace herald::protocol {

// ---- client to server -------------------------------------------------------

struct AckFrame {
  std::optional<std::uint64_t> seq;   // acknowledges one message
  std::optional<std::uint64_t> upto;  // acknowledges every sent message with seq <= upto
};

// id and ts are kept as the JSON text the client sent, so that the pong
// echoes them exactly (a number like 1e999 has no exact parsed form).
struct PingFrame {
  std::string id_json;  // empty when absent
  std::string ts_json;  // empty when absent
};

struct RefreshFrame {
  std::string token;
};

// A well-formed frame whose type we do not know, or whose fields are unusable:
// answered with an error frame, the connection stays open (PROTOCOL.md 3).
struct UnusableFrame {
  std::string type;
  std::string error_code;  // "unknown_type" or "invalid_frame"
  std::string message;
};

using ClientFrame = std::variant<AckFrame, PingFrame, RefreshFrame, UnusableFrame>;

// ---- server to client -------------------------------------------------------

struct WelcomeFrame {
  std::string conn_id;
  std::string user;
  std::string device;
  std::string epoch;
  std::uint64_t head_seq = 0;
  std::uint64_t resume_from = 1;
  bool recovered = true;
  std::int64_t heartbeat_ms = 0;
  std::int64_t idle_timeout_ms = 0;
  std::uint32_t max_inflight = 0;
  std::int64_t server_time = 0;
};

struct MsgFrame {
  std::uint64_t seq = 0;
  std::string id;
  std::string event;      // empty: field omitted
  std::string data_json;  // the publisher's JSON value as text
  std::int64_t ts = 0;
  std::uint32_t attempt = 1;
  std::string trace_id;
};

struct PongFrame {
  std::string id_json;  // the ping's id as JSON text; empty: omitted
  std::string ts_json;  // the ping's ts as JSON text; empty: omitted
  std::int64_t server_time = 0;
};

struct ErrorFrame {
  std::string code;
  std::string message;
};

struct RefreshedFrame {
  std::int64_t exp = 0;
};

struct UnknownServerFrame {
  std::string type;
};

using ServerFrame = std::variant<WelcomeFrame, MsgFrame, PongFrame, ErrorFrame, RefreshedFrame,
                                 UnknownServerFrame>;

}  // namespace herald::protocol
