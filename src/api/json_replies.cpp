#include "api/json_replies.hpp"

namespace herald::api {
namespace json = boost::json;
namespace http = boost::beast::http;
using transport::HttpResponse;

HttpResponse json_response(http::status status, std::string body) {
  HttpResponse res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  return res;
}

HttpResponse json_response(http::status status, const json::value& v) {
  return json_response(status, json::serialize(v));
}

HttpResponse error(errc code, std::string_view message, std::string_view field) {
  return json_response(static_cast<http::status>(error_info(code).http_status),
                       error_body(code, message, field));
}

HttpResponse not_allowed(http::verb allowed) {
  const std::string name(http::to_string(allowed));
  auto res = error(errc::method_not_allowed, "use " + name);
  res.set(http::field::allow, allowed == http::verb::get ? "GET, HEAD" : name);
  return res;
}

json::object error_object(const ItemError& e) {
  json::object err;
  err["code"] = error_info(e.code).name;
  err["message"] = e.message;
  if (!e.field.empty()) err["field"] = e.field;
  return json::object{{"error", std::move(err)}};
}

std::string with_raw_member(const json::object& o, std::string_view key, std::string_view raw_json) {
  std::string out = json::serialize(o);
  out.pop_back();  // the closing brace
  if (!o.empty()) out += ',';
  out += json::serialize(json::string(key));
  out += ':';
  out += raw_json.empty() ? std::string_view("null") : raw_json;
  out += '}';
  return out;
}

std::string array_text(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += items[i];
  }
  out += ']';
  return out;
}

}  // namespace herald::api
