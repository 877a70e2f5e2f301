#include "core/errc.hpp"

#include <array>
#include <boost/json.hpp>

namespace herald {
namespace {

constexpr std::array<ErrorInfo, kErrcCount> kErrors{{
    {errc::bad_request, 400, "bad_request"},
    {errc::invalid_json, 400, "invalid_json"},
    {errc::unauthorized, 401, "unauthorized"},
    {errc::forbidden_origin, 403, "forbidden_origin"},
    {errc::not_found, 404, "not_found"},
    {errc::method_not_allowed, 405, "method_not_allowed"},
    {errc::upgrade_required, 426, "upgrade_required"},
    {errc::payload_too_large, 413, "payload_too_large"},
    {errc::rate_limited, 429, "rate_limited"},
    {errc::too_many_connections, 429, "too_many_connections"},
    {errc::draining, 503, "draining"},
    {errc::store_unavailable, 503, "store_unavailable"},
    {errc::overloaded, 429, "overloaded"},
    {errc::stale_attempt, 409, "stale_attempt"},
    {errc::internal, 500, "internal"},
}};

}  // namespace

const ErrorInfo& error_info(errc e) { return kErrors[static_cast<std::size_t>(e)]; }

errc errc_from_name(std::string_view name) {
  for (const auto& e : kErrors) {
    if (e.name == name) return e.code;
  }
  return errc::internal;
}

std::string error_body(errc e, std::string_view message, std::string_view field) {
  boost::json::object err;
  err["code"] = error_info(e).name;
  err["message"] = message;
  if (!field.empty()) err["field"] = field;
  boost::json::object body;
  body["error"] = std::move(err);
  return boost::json::serialize(body);
}

std::string_view all_error_names_for_docs() {
  static const std::string names = [] {
    std::string s;
    for (const auto& e : kErrors) {
      s += std::to_string(e.http_status);
      s += ' ';
      s += e.name;
      s += '\n';
    }
    return s;
  }();
  return names;
}

}  // namespace herald
