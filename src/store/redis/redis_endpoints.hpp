#pragma once
// Where the redis store connects, from HERALD_REDIS_URL (docs/configuration.md):
//   redis://host:port                    one standalone Redis
//   redis+cluster://host:port[,host:port...]  seed nodes of a Redis Cluster
// Either may carry credentials before the hosts, as redis-cli takes them:
// redis://:password@host:port (requirepass) or redis://user:password@host:port
// (an ACL user); percent-encoded where they hold ':', '@', ',' or '/'.
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "store/redis/slot_map.hpp"

namespace herald::store {

// Sent with AUTH on every new connection when password is set.
struct RedisCredentials {
  std::string username;  // empty: the default user (AUTH password)
  std::string password;
};

struct RedisEndpoints {
  bool cluster = false;            // Redis Cluster: route by slot, follow MOVED/ASK
  std::vector<NodeAddress> nodes;  // standalone: exactly one; cluster: the seeds
  RedisCredentials credentials;
};

// Throws std::invalid_argument naming what is wrong (scheme, host, port),
// with the password left out.
RedisEndpoints parse_redis_url(std::string_view url);

// The url with its password replaced by "***": what logs and errors show.
std::string redact_redis_url(std::string_view url);

// Splits "host:port" (the port is checked by parse_redis_url).
std::pair<std::string, int> split_address(const NodeAddress& address);

}  // namespace herald::store
