#pragma once
// Where the redis store connects, from HERALD_REDIS_URL (docs/configuration.md):
//   redis://host:port                    one standalone Redis
//   redis+cluster://host:port[,host:port...]  seed nodes of a Redis Cluster
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "store/redis/slot_map.hpp"

namespace herald::store {

struct RedisEndpoints {
  bool cluster = false;            // Redis Cluster: route by slot, follow MOVED/ASK
  std::vector<NodeAddress> nodes;  // standalone: exactly one; cluster: the seeds
};

// Throws std::invalid_argument naming what is wrong (scheme, host, port).
RedisEndpoints parse_redis_url(std::string_view url);

// Splits "host:port" (the port is checked by parse_redis_url).
std::pair<std::string, int> split_address(const NodeAddress& address);

}  // namespace herald::store
