#pragma once
// The one table of API errors: each code maps to an HTTP status and a JSON
// error code (PROTOCOL.md 2, 7, 10). docs/errors.md is checked against it.
#include <string>
#include <string_view>

namespace herald {

enum class errc {
  bad_request,           // malformed body or parameter
  invalid_json,          // body is not JSON
  unauthorized,          // missing, malformed, expired or badly signed credential
  forbidden_origin,      // Origin not in allowed_origins
  not_found,             // route, user message or seq unknown
  method_not_allowed,    // route exists, method does not
  upgrade_required,      // a plain request to the WebSocket endpoint
  payload_too_large,     // message data over max_message_bytes
  rate_limited,          // publish rate per API key exceeded
  too_many_connections,  // per user, per IP or global connection limit
  draining,              // server is shutting down
  store_unavailable,     // store cannot accept or serve
  overloaded,            // bounded queue full; priority shedding
  stale_attempt,         // a connection attempt its client already replaced by a later one
  internal,              // broken invariant; logged
};
inline constexpr std::size_t kErrcCount = static_cast<std::size_t>(errc::internal) + 1;

struct ErrorInfo {
  errc code;
  int http_status;
  std::string_view name;  // the JSON "code" field
};

const ErrorInfo& error_info(errc e);
// The errc whose JSON code is `name`; errc::internal for none.
errc errc_from_name(std::string_view name);

// The JSON error body {"error":{"code","message"[,"field"]}} of PROTOCOL.md 10.
std::string error_body(errc e, std::string_view message, std::string_view field = {});

// Every row of the table, for docs checks.
std::string_view all_error_names_for_docs();

}  // namespace herald
