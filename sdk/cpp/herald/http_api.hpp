#pragma once
// Blocking HTTP calls to Herald's publish and inspection API (PROTOCOL.md 7, 8),
// for the CLI and tests. Each call owns a private io_context and a fresh TCP
// connection; safe from any thread, never from inside an io_context handler that
// must not block.
#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald::sdk {

struct HttpResponse {
  int status = 0;    // 0: no response (bad URL, connect or I/O failure, timeout); body says why
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased; repeated fields joined with ", "
};

// base_url: "http://127.0.0.1:8080" (a path in it prefixes target). target: "/v1/publish".
// api_key, when not empty, is sent as Authorization: Bearer. A non-empty body is sent
// as application/json unless extra_headers names a Content-Type. timeout bounds the
// whole exchange, connect included.
HttpResponse http_request(std::string_view method, std::string_view base_url,
                          std::string_view target, std::string_view api_key,
                          std::string_view body = {},
                          std::vector<std::pair<std::string, std::string>> extra_headers = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace herald::sdk
