#pragma once
// Where a client connects: a server URL split into what the resolver, the Host
// header and the request line need. Pure functions, safe from any thread.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

namespace herald::sdk {

struct Endpoint {
  std::string host;         // for the resolver (an IPv6 address without brackets)
  std::string port;         // "80" when the URL names none
  std::string host_header;  // host[:port] as written in the URL
  std::string target;       // encoded path and query; "/" when the URL has no path
};

// Accepts ws:// and http:// URLs (one Herald port serves both). wss:// and
// https:// are refused with std::errc::protocol_not_supported: no TLS yet.
boost::system::result<Endpoint> parse_endpoint(std::string_view url);

// The WebSocket endpoint of one connect: url with the query parameters of
// PROTOCOL.md 2 set (replacing any already in url): device when not empty,
// last_seq when given, epoch when not empty, attempt ("<session>.<n>",
// docs/protocol.md "Stale attempts") when not empty.
boost::system::result<Endpoint> connect_endpoint(std::string_view url, std::string_view device,
                                                 std::optional<std::uint64_t> last_seq,
                                                 std::string_view epoch, std::string_view attempt = {});

}  // namespace herald::sdk
