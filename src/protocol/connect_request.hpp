#pragma once
// What Herald reads from a WebSocket upgrade request (PROTOCOL.md 2, 10):
// the path, the token from the first source present (Authorization header,
// ?token=, cookie herald_token; no fallback when it is invalid), and the
// query parameters device, last_seq, epoch and attempt (docs/protocol.md). Pure: the gateway decides
// what to refuse, and in which order (401 before 400, PROTOCOL.md 10).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herald::protocol {

struct ConnectParamError {
  std::string field;
  std::string message;
};

// ?attempt=<session>.<n>: which connection attempt of one client instance
// this is (docs/protocol.md "Stale attempts"). An attempt of the same
// session with a lower n than the device's live connection is stale.
struct ConnectAttempt {
  std::string session;  // 1..64 chars of [A-Za-z0-9_-], chosen once per client instance
  std::uint64_t n = 0;  // >= 1, increasing with each attempt of the session
};

struct ConnectRequest {
  bool path_ok = false;                 // the target's path is /v1/ws
  std::optional<std::string> token;     // absent: no source had one
  std::optional<std::string> device;    // ?device=, valid when param_error is empty
  std::optional<std::uint64_t> last_seq;
  std::optional<std::string> epoch;
  std::optional<ConnectAttempt> attempt;
  std::optional<ConnectParamError> param_error;  // the first bad parameter
};

// authorization, cookie: the header values when present.
ConnectRequest parse_connect_request(std::string_view target, std::optional<std::string_view> authorization,
                                     std::optional<std::string_view> cookie);

// PROTOCOL.md 2: 1..64 chars of [A-Za-z0-9._:-].
bool valid_device_id(std::string_view d);

// "<session>.<n>" as ?attempt= carries it; nullopt when malformed.
std::optional<ConnectAttempt> parse_connect_attempt(std::string_view v);

// Longest epoch accepted in ?epoch= (ours are 16 hex digits).
inline constexpr std::size_t kMaxEpochBytes = 128;

}  // namespace herald::protocol
