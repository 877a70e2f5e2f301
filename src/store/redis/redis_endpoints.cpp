#include "store/redis/redis_endpoints.hpp"

#include <charconv>

namespace herald::store {

namespace {

constexpr int kDefaultPort = 6379;  // Redis' own default

NodeAddress parse_node(std::string_view text, std::string_view url) {
  const auto bad = [&](const std::string& what) {
    return std::invalid_argument("redis_url '" + std::string(url) + "': " + what);
  };
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
  std::string_view rest = url;
  if (rest.starts_with("redis://")) {
    rest.remove_prefix(8);
  } else if (rest.starts_with("redis+cluster://")) {
    rest.remove_prefix(16);
    out.cluster = true;
  } else {
    throw std::invalid_argument("redis_url '" + std::string(url) +
                                "': expected redis://host:port or redis+cluster://host:port,...");
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  while (true) {
    const auto comma = rest.find(',');
    out.nodes.push_back(parse_node(rest.substr(0, comma), url));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (!out.cluster && out.nodes.size() != 1) {
    throw std::invalid_argument("redis_url '" + std::string(url) +
                                "': several hosts need redis+cluster://");
  }
  return out;
}

std::pair<std::string, int> split_address(const NodeAddress& address) {
  const auto colon = address.rfind(':');
  int port = 0;
  std::from_chars(address.data() + colon + 1, address.data() + address.size(), port);
  return {address.substr(0, colon), port};
}

}  // namespace herald::store
