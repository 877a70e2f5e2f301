#pragma once
// The token route of the /demo page (config `demo`): mints a short-lived
// development JWT for a user the visitor chose, signed with the server's
// HS256 secret, so that the page can connect with nothing but a browser.
// Pure logic: the caller checks that demo mode is on and shapes the HTTP
// answer. Never reachable when `demo` is off (the route does not exist).
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "api/publish_request.hpp"
#include "config/server_config.hpp"

namespace herald::api {

// Long enough for a demo session, short enough that a leaked token is
// worthless soon; the SDK asks for a new one before it expires.
inline constexpr std::chrono::seconds kDemoTokenTtl{600};

struct DemoToken {
  std::string token;
  std::string user;
  std::int64_t exp = 0;  // unix seconds
};

// body: {"user": "..."}, user as PROTOCOL.md 2 requires of `sub` (1..128
// bytes, no control characters). Carries the configured iss/aud.
std::variant<DemoToken, ItemError> mint_demo_token(const config::ServerConfig& config,
                                                   std::string_view body, std::int64_t now_ms);

}  // namespace herald::api
