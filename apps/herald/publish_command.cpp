#include "publish_command.hpp"

#include <iostream>

#include <boost/json.hpp>

#include "herald/http_api.hpp"

namespace herald::cli {
namespace json = boost::json;

int run_publish(const PublishOptions& opts) {
  if (opts.user.empty()) {
    std::cerr << "herald publish: a user is required\n";
    return 2;
  }
  json::error_code ec;
  json::parse(opts.data_json, ec);
  if (ec) {
    std::cerr << "herald publish: data is not valid JSON: " << ec.message() << '\n';
    return 2;
  }

  json::object body;
  body["user"] = opts.user;
  if (!opts.event.empty()) body["event"] = opts.event;
  if (!opts.id.empty()) body["id"] = opts.id;
  if (!opts.collapse_key.empty()) body["collapse_key"] = opts.collapse_key;
  if (!opts.priority.empty()) body["priority"] = opts.priority;
  if (opts.ttl_ms) body["ttl_ms"] = *opts.ttl_ms;
  if (opts.deliver_at) body["deliver_at"] = *opts.deliver_at;
  // `data` goes in as the text given, checked above: re-serializing the parsed value
  // would turn integers past 64 bits into doubles and rewrite number text
  // (PROTOCOL.md 10: data keeps its exact value).
  std::string text = json::serialize(body);
  text.pop_back();  // the closing brace; body is never empty (it has "user")
  text += R"(,"data":)";
  text += opts.data_json;
  text += '}';

  const auto res = sdk::http_request("POST", opts.url, "/v1/publish", opts.api_key, text);
  if (res.status == 0) {
    std::cerr << "herald publish: " << res.body << '\n';
    return 1;
  }
  std::cout << res.body << std::endl;
  if (res.status != 200) {
    std::cerr << "herald publish: HTTP " << res.status << '\n';
    return 1;
  }
  return 0;
}

}  // namespace herald::cli
