#include "herald/endpoint.hpp"

#include <charconv>
#include <optional>

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

namespace herald::sdk {
namespace urls = boost::urls;

namespace {

std::optional<unsigned> port_number(std::string_view text) {
  unsigned n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n == 0 || n > 65535) return std::nullopt;
  return n;
}

boost::system::result<urls::url> parse_supported(std::string_view text) {
  auto parsed = urls::parse_uri(text);
  if (!parsed) return parsed.error();
  urls::url u(*parsed);
  if (u.scheme_id() != urls::scheme::ws && u.scheme_id() != urls::scheme::http) {
    return boost::system::error_code(std::make_error_code(std::errc::protocol_not_supported));
  }
  if (u.encoded_host().empty()) {
    return boost::system::error_code(std::make_error_code(std::errc::invalid_argument));
  }
  // An empty port means the default; any other must be 1..65535, or every attempt
  // would fail at connect instead of here (Boost.URL lets both through).
  if (u.has_port() && !u.port().empty() && !port_number(u.port())) {
    return boost::system::error_code(std::make_error_code(std::errc::invalid_argument));
  }
  // "ws://h:abc/x" parses here as port "" and path "abc/x"; after an authority a
  // path starts with "/" (RFC 3986 3.3).
  if (!u.encoded_path().empty() && u.encoded_path().front() != '/') {
    return boost::system::error_code(std::make_error_code(std::errc::invalid_argument));
  }
  return u;
}

Endpoint to_endpoint(const urls::url& u) {
  Endpoint e;
  e.host = u.host_address();
  e.port = u.has_port() && !u.port().empty() ? std::to_string(*port_number(u.port())) : std::string("80");
  e.host_header = u.encoded_host_and_port();
  e.target = u.encoded_target();
  if (e.target.empty() || e.target.front() != '/') e.target.insert(0, "/");
  return e;
}

}  // namespace

boost::system::result<Endpoint> parse_endpoint(std::string_view url) {
  auto u = parse_supported(url);
  if (!u) return u.error();
  return to_endpoint(*u);
}

boost::system::result<Endpoint> connect_endpoint(std::string_view url, std::string_view device,
                                                 std::optional<std::uint64_t> last_seq,
                                                 std::string_view epoch, std::string_view attempt) {
  auto u = parse_supported(url);
  if (!u) return u.error();
  auto params = u->params();
  // The resume position and the attempt belong to the client: one written into the
  // URL would be sent on attempts the client knows nothing of (PROTOCOL.md 2).
  params.erase("last_seq");
  params.erase("epoch");
  params.erase("attempt");
  if (!device.empty()) params.set("device", device);
  if (last_seq) params.set("last_seq", std::to_string(*last_seq));
  if (!epoch.empty()) params.set("epoch", epoch);
  if (!attempt.empty()) params.set("attempt", attempt);
  return to_endpoint(*u);
}

}  // namespace herald::sdk
