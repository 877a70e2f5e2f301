#pragma once
// Why a connection closed: the WebSocket close code (PROTOCOL.md 6) and the
// label of herald_connections_closed_total{reason}.
#include <cstdint>
#include <string_view>

namespace herald {

enum class CloseReason : std::uint16_t {
  normal = 1000,          // client closed cleanly
  going_away = 1001,      // server draining
  message_too_big = 1009, // frame or message over max_message_bytes
  token_invalid = 4001,   // token expired or invalid
  protocol_error = 4003,  // bad JSON, no type, binary frame
  unresponsive = 4008,    // ack or idle timeout
  slow_consumer = 4009,   // send queue over max_send_queue_bytes
  kicked = 4010,          // operator kick
  replaced = 4011,        // newer connection of the same device
  rate_limited = 4029,    // inbound frame rate exceeded
  transport_error = 1006, // socket failed or peer vanished (never sent on the wire)
};

constexpr std::uint16_t close_code(CloseReason r) { return static_cast<std::uint16_t>(r); }

constexpr std::string_view close_reason_name(CloseReason r) {
  switch (r) {
    case CloseReason::normal: return "normal";
    case CloseReason::going_away: return "going_away";
    case CloseReason::message_too_big: return "message_too_big";
    case CloseReason::token_invalid: return "token_invalid";
    case CloseReason::protocol_error: return "protocol_error";
    case CloseReason::unresponsive: return "unresponsive";
    case CloseReason::slow_consumer: return "slow_consumer";
    case CloseReason::kicked: return "kicked";
    case CloseReason::replaced: return "replaced";
    case CloseReason::rate_limited: return "rate_limited";
    case CloseReason::transport_error: return "transport_error";
  }
  return "unknown";
}

}  // namespace herald
