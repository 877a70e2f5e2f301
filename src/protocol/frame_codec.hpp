#pragma once
// The only code that knows the JSON text of PROTOCOL.md section 3 frames.
// Pure functions, safe from any thread.
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

#include "protocol/frames.hpp"

namespace herald::protocol {

// Why a client frame closes the connection with 4003 (PROTOCOL.md 3, 10).
enum class FrameError { not_json, too_deep, not_object, missing_type, type_not_string };
std::string_view frame_error_message(FrameError e);

// Server side.
boost::system::result<ClientFrame, FrameError> decode_client_frame(std::string_view text);
std::string encode(const WelcomeFrame& f);
std::string encode(const MsgFrame& f);
std::string encode(const PongFrame& f);
std::string encode(const ErrorFrame& f);
std::string encode(const RefreshedFrame& f);

// Client side (the C++ SDK, the CLI and tests).
boost::system::result<ServerFrame, FrameError> decode_server_frame(std::string_view text);
std::string encode_ack(std::uint64_t seq);
std::string encode_ack_upto(std::uint64_t upto);
std::string encode_ping(std::int64_t id, std::int64_t ts);
std::string encode_refresh(std::string_view token);

// JSON string literal (quoted, escaped) for text.
std::string json_quote(std::string_view text);

}  // namespace herald::protocol
