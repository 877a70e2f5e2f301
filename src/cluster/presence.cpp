#include "cluster/presence.hpp"

#include <cstdlib>

#include "store/redis/redis_keys.hpp"

namespace herald::cluster {

namespace {

// Removes the device's entry only if it is still this connection's.
const store::RedisScript& remove_if_same() {
  static const store::RedisScript s(R"lua(
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
)lua");
  return s;
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto end = s.find('\n', start);
    if (end == std::string::npos) end = s.size();
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

Presence::Presence(store::RedisEndpoints endpoints, std::string prefix, std::string node_id)
    : prefix_(std::move(prefix)), node_id_(std::move(node_id)), link_(std::move(endpoints), {}) {}

std::string presence_key(const std::string& prefix, const std::string& user) {
  // The user's hash tag: the same slot as the user's inbox keys.
  const auto meta = store::RedisKeys(prefix).user(user, store::UserKey::meta);
  return meta.substr(0, meta.size() - 5) + ":presence";  // ":meta" -> ":presence"
}

std::string Presence::key(const std::string& user) const { return presence_key(prefix_, user); }

std::string node_alive_key(const std::string& prefix, const std::string& node) {
  return prefix + "{node:" + node + "}:alive";
}

std::string Presence::alive_key(const std::string& node) const { return node_alive_key(prefix_, node); }

std::string Presence::entry(const std::string& conn_id, std::int64_t connected_at_ms) const {
  return node_id_ + "\n" + conn_id + "\n" + std::to_string(connected_at_ms);
}

void Presence::connected(const std::string& user, const std::string& device, const std::string& conn_id,
                         std::int64_t connected_at_ms) {
  link_.execute_one(store::RedisCommand::keyed({"HSET", key(user), device, entry(conn_id, connected_at_ms)}));
}

void Presence::disconnected(const std::string& user, const std::string& device, const std::string& conn_id,
                            std::int64_t connected_at_ms) {
  link_.execute_one(
      store::RedisCommand::eval(remove_if_same(), {key(user)}, {device, entry(conn_id, connected_at_ms)}));
}

void Presence::heartbeat() {
  link_.execute_one(store::RedisCommand::keyed({"SET", alive_key(node_id_), "1", "PX", std::to_string(kAliveMs)}));
}

std::vector<RemoteDevice> Presence::remote(const std::string& user) {
  std::vector<RemoteDevice> out;
  const auto all = link_.execute_one(store::RedisCommand::keyed({"HGETALL", key(user)}));
  std::vector<RemoteDevice> candidates;
  for (std::size_t i = 0; i + 1 < store::reply_size(all.get()); i += 2) {
    const auto device = store::reply_string(store::reply_at(all.get(), i)).value_or("");
    const auto parts = split_lines(store::reply_string(store::reply_at(all.get(), i + 1)).value_or(""));
    if (parts.size() != 3 || parts[0] == node_id_) continue;
    candidates.push_back({device, parts[0], parts[1], std::strtoll(parts[2].c_str(), nullptr, 10)});
  }
  if (candidates.empty()) return out;
  std::vector<store::RedisCommand> checks;
  for (const auto& c : candidates) checks.push_back(store::RedisCommand::keyed({"EXISTS", alive_key(c.node)}));
  const auto alive = link_.execute(checks);
  std::vector<store::RedisCommand> stale;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (store::reply_int(alive[i].get()).value_or(1) != 0) {
      out.push_back(candidates[i]);
    } else {
      stale.push_back(store::RedisCommand::eval(
          remove_if_same(), {key(user)},
          {candidates[i].device, candidates[i].node + "\n" + candidates[i].conn_id + "\n" +
                                     std::to_string(candidates[i].connected_at_ms)}));
    }
  }
  if (!stale.empty()) link_.execute(stale);
  return out;
}

}  // namespace herald::cluster
