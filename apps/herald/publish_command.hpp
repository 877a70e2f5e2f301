#pragma once
// `herald publish`: one POST /v1/publish (PROTOCOL.md 7) from the command line.
#include <cstdint>
#include <optional>
#include <string>

namespace herald::cli {

struct PublishOptions {
  std::string url;           // http://HOST:PORT
  std::string api_key;       // sent as Authorization: Bearer
  std::string user;          // required
  std::string data_json;     // required: any JSON value
  std::string event;         // empty: omitted (as are the other empty strings)
  std::string id;
  std::string collapse_key;
  std::string priority;      // high, normal or low
  std::optional<std::int64_t> ttl_ms;
  std::optional<std::int64_t> deliver_at;  // unix ms
};

// Prints the response body on stdout. Returns 0 on 200, 1 on any other answer or
// no answer, 2 when the options are unusable (no user, data not JSON).
int run_publish(const PublishOptions& opts);

}  // namespace herald::cli
