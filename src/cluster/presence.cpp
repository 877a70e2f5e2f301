#include "cluster/presence.hpp"

#include <cstdlib>

#include "core/ids.hpp"
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
    : prefix_(std::move(prefix)),
      node_id_(std::move(node_id)),
      incarnation_(random_hex(8)),
      link_(std::move(endpoints), {}) {}

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
  return node_id_ + "\n" + conn_id + "\n" + std::to_string(connected_at_ms) + "\n" + incarnation_;
}

void Presence::connected(const std::string& user, const std::string& device, const std::string& conn_id,
                         std::int64_t connected_at_ms) {
  link_.execute_one(store::RedisCommand::keyed({"HSET", key(user), device, entry(conn_id, connected_at_ms)}));
}

void Presence::disconnected(const std::string& user, const std::string& device, const std::string& conn_id,
                            std::int64_t connected_at_ms) {
  Removal r{user, device, entry(conn_id, connected_at_ms)};
  const auto reply =
      link_.execute_one(store::RedisCommand::eval(remove_if_same(), {key(user)}, {r.device, r.entry}));
  if (store::reply_ok(reply.get())) return;
  // Left in Redis, it would list the device (and count it against the
  // user's limit) for as long as this node lives.
  std::lock_guard lock(pending_mu_);
  pending_.push_back(std::move(r));
  if (pending_.size() > kMaxPendingRemovals) pending_.pop_front();
}

void Presence::heartbeat() {
  const auto reply = link_.execute_one(
      store::RedisCommand::keyed({"SET", alive_key(node_id_), incarnation_, "PX", std::to_string(kAliveMs)}));
  if (store::reply_ok(reply.get())) retry_removals();
}

// A slice per heartbeat, pipelined; what fails again goes back.
void Presence::retry_removals() {
  std::vector<Removal> batch;
  {
    std::lock_guard lock(pending_mu_);
    while (!pending_.empty() && batch.size() < 1000) {
      batch.push_back(std::move(pending_.front()));
      pending_.pop_front();
    }
  }
  if (batch.empty()) return;
  std::vector<store::RedisCommand> commands;
  for (const auto& r : batch) {
    commands.push_back(store::RedisCommand::eval(remove_if_same(), {key(r.user)}, {r.device, r.entry}));
  }
  const auto replies = link_.execute(commands);
  std::lock_guard lock(pending_mu_);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (i < replies.size() && store::reply_ok(replies[i].get())) continue;
    pending_.push_back(std::move(batch[i]));
  }
  while (pending_.size() > kMaxPendingRemovals) pending_.pop_front();
}

std::size_t Presence::pending_removals() const {
  std::lock_guard lock(pending_mu_);
  return pending_.size();
}

std::vector<RemoteDevice> Presence::remote(const std::string& user) {
  std::vector<RemoteDevice> out;
  const auto all = link_.execute_one(store::RedisCommand::keyed({"HGETALL", key(user)}));
  struct Candidate {
    RemoteDevice device;
    std::string incarnation;  // empty: an entry from before incarnations
    std::string entry;        // as stored, for the compare-and-delete
  };
  std::vector<Candidate> candidates;
  for (std::size_t i = 0; i + 1 < store::reply_size(all.get()); i += 2) {
    const auto device = store::reply_string(store::reply_at(all.get(), i)).value_or("");
    auto text = store::reply_string(store::reply_at(all.get(), i + 1)).value_or("");
    const auto parts = split_lines(text);
    // Three lines: written by a node from before incarnations.
    if ((parts.size() != 3 && parts.size() != 4) || parts[0] == node_id_) continue;
    candidates.push_back({{device, parts[0], parts[1], std::strtoll(parts[2].c_str(), nullptr, 10)},
                          parts.size() == 4 ? parts[3] : std::string(),
                          std::move(text)});
  }
  if (candidates.empty()) return out;
  std::vector<store::RedisCommand> checks;
  for (const auto& c : candidates) checks.push_back(store::RedisCommand::keyed({"GET", alive_key(c.device.node)}));
  const auto alive = link_.execute(checks);
  std::vector<store::RedisCommand> stale;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const redisReply* r = i < alive.size() ? alive[i].get() : nullptr;
    if (!store::reply_ok(r)) {  // unknown: keep it (presence is advice)
      out.push_back(candidates[i].device);
      continue;
    }
    const auto incarnation = store::reply_string(r);
    const bool live = incarnation && (candidates[i].incarnation.empty() || *incarnation == candidates[i].incarnation);
    if (live) {
      out.push_back(candidates[i].device);
    } else {
      stale.push_back(store::RedisCommand::eval(remove_if_same(), {key(user)},
                                                {candidates[i].device.device, candidates[i].entry}));
    }
  }
  if (!stale.empty()) link_.execute(stale);
  return out;
}

}  // namespace herald::cluster
