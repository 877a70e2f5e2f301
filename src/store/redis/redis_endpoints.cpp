#include "store/redis/redis_endpoints.hpp"

#include <charconv>
#include <optional>

#include <boost/url/pct_string_view.hpp>

namespace herald::store {

namespace {

constexpr int kDefaultPort = 6379;  // Redis' own default

std::invalid_argument bad_url(std::string_view url, const std::string& what) {
  return std::invalid_argument("redis_url '" + redact_redis_url(url) + "': " + what);
}

// Where the hosts start: after the scheme and the credentials, if any.
std::size_t scheme_length(std::string_view url) {
  if (url.starts_with("redis://")) return 8;
  if (url.starts_with("redis+cluster://")) return 16;
  return 0;
}

// The userinfo part ("user:password") of the url, when it has one.
std::optional<std::string_view> userinfo(std::string_view url) {
  const std::size_t start = scheme_length(url);
  const std::string_view rest = url.substr(start);
  const auto at = rest.rfind('@');
  if (at == std::string_view::npos) return std::nullopt;
  return rest.substr(0, at);
}

std::string percent_decoded(std::string_view text, std::string_view url) {
  const auto encoded = boost::urls::make_pct_string_view(text);
  if (!encoded) throw bad_url(url, "bad percent-encoding in the credentials");
  const auto decoded = encoded->decode();
  return std::string(decoded.begin(), decoded.end());
}

NodeAddress parse_node(std::string_view text, std::string_view url) {
  const auto bad = [&](const std::string& what) { return bad_url(url, what); };
  if (text.empty()) throw bad("empty host");
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::string(text) + ":" + std::to_string(kDefaultPort);
  const auto host = text.substr(0, colon);
  const auto port_text = text.substr(colon + 1);
  int port = 0;
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (host.empty()) throw bad("empty host");
  if (ec != std::errc{} || p != port_text.data() + port_text.size() || port < 1 || port > 65535) {
    throw bad("bad port '" + std::string(port_text) + "'");
  }
  return std::string(host) + ":" + std::to_string(port);
}

}  // namespace

RedisEndpoints parse_redis_url(std::string_view url) {
  RedisEndpoints out;
  const std::size_t scheme = scheme_length(url);
  if (scheme == 0) throw bad_url(url, "expected redis://host:port or redis+cluster://host:port,...");
  out.cluster = url.starts_with("redis+cluster://");
  std::string_view rest = url.substr(scheme);
  if (const auto info = userinfo(url)) {
    const auto colon = info->find(':');
    if (colon == std::string_view::npos) throw bad_url(url, "credentials must be user:password or :password");
    out.credentials.username = percent_decoded(info->substr(0, colon), url);
    out.credentials.password = percent_decoded(info->substr(colon + 1), url);
    if (out.credentials.password.empty()) throw bad_url(url, "empty password");
    rest.remove_prefix(info->size() + 1);
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  while (true) {
    const auto comma = rest.find(',');
    out.nodes.push_back(parse_node(rest.substr(0, comma), url));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (!out.cluster && out.nodes.size() != 1) throw bad_url(url, "several hosts need redis+cluster://");
  return out;
}

std::string redact_redis_url(std::string_view url) {
  const auto info = userinfo(url);
  if (!info) return std::string(url);
  const auto colon = info->find(':');
  if (colon == std::string_view::npos) return std::string(url);  // no password in it
  const std::size_t password_at = scheme_length(url) + colon + 1;
  return std::string(url.substr(0, password_at)) + "***" + std::string(url.substr(password_at + info->size() - colon - 1));
}

std::pair<std::string, int> split_address(const NodeAddress& address) {
  const auto colon = address.rfind(':');
  int port = 0;
  std::from_chars(address.data() + colon + 1, address.data() + address.size(), port);
  return {address.substr(0, colon), port};
}

}  // namespace herald::store
