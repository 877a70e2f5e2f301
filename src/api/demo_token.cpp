#include "api/demo_token.hpp"

#include <boost/json.hpp>

#include "auth/jwt.hpp"
#include "core/text.hpp"

namespace herald::api {
namespace json = boost::json;

std::variant<DemoToken, ItemError> mint_demo_token(const config::ServerConfig& config,
                                                   std::string_view body, std::int64_t now_ms) {
  json::error_code ec;
  const json::value v = json::parse(body, ec);
  if (ec) return ItemError{errc::invalid_json, "body is not valid JSON", ""};
  const json::value* user = v.is_object() ? v.as_object().if_contains("user") : nullptr;
  if (user == nullptr || !user->is_string()) return ItemError{errc::bad_request, "user must be a string", "user"};
  const std::string_view u = user->as_string();
  // The rules the token check applies to `sub` (PROTOCOL.md 10).
  if (!is_valid_user_id(u)) {
    return ItemError{errc::bad_request, "user must be 1..128 bytes of UTF-8 without control characters", "user"};
  }
  DemoToken t;
  t.user = std::string(u);
  t.exp = now_ms / 1000 + kDemoTokenTtl.count();
  json::object claims{{"sub", t.user}, {"iat", now_ms / 1000}, {"exp", t.exp}};
  if (!config.jwt_issuer.empty()) claims["iss"] = config.jwt_issuer;
  if (!config.jwt_audience.empty()) claims["aud"] = config.jwt_audience;
  t.token = auth::sign_hs256(claims, config.jwt_secret);
  return t;
}

}  // namespace herald::api
