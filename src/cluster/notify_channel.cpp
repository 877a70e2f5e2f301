#include "cluster/notify_channel.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>
#include <string_view>

#include "cluster/presence.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "core/thread_name.hpp"
#include "store/redis/redis_connection.hpp"

namespace herald::cluster {

namespace {

using namespace std::chrono_literals;

constexpr auto kPoll = 100ms;           // how often the subscriber looks at the stop flag
constexpr auto kBackoffMax = 1000ms;    // a restarted Redis is subscribed to within a second

// "<kind> <instance>\n<field>\n<field>...": user and device ids have no
// control characters (PROTOCOL.md 2, 10). Kinds: n (fields: users with new
// messages; the header is "n <instance> <ms>", ms the unix time the first
// of them was queued, for the lag metric), r (fields: user, device,
// connected at ms, attempt session, attempt number, conn id), k (fields: user, then "1<device>" for one device or "0"
// for all).
std::string encode(char kind, const std::string& instance, std::span<const std::string> fields) {
  std::string out = std::string(1, kind) + " " + instance;
  for (const auto& f : fields) {
    out += '\n';
    out += f;
  }
  return out;
}

// KEYS: presence hashes of users (one slot); ARGV: this node's id, the
// prefix, the instance id, then the users in the order of KEYS. Groups the
// users by the other nodes holding a device of theirs and PUBLISHes one
// notification ("n <instance>\n<user>\n...") to each of those nodes'
// channels, skipping nodes whose alive key has expired (dead: their stale
// presence entries must not make them targets). Returns {notifications
// published, users named in them}. Standalone Redis only: it reads alive
// keys not in KEYS.
const store::RedisScript& notify_script() {
  static const store::RedisScript s(R"lua(
local by_node, order = {}, {}
for i, key in ipairs(KEYS) do
  local seen = {}
  for _, entry in ipairs(redis.call('HVALS', key)) do
    local node = string.match(entry, '^[^\n]*')
    if node ~= ARGV[1] and not seen[node] then
      seen[node] = true
      local users = by_node[node]
      if not users then
        users = {}
        by_node[node] = users
        order[#order + 1] = node
      end
      users[#users + 1] = ARGV[3 + i]
    end
  end
end
local sent, named = 0, 0
for _, node in ipairs(order) do
  if redis.call('EXISTS', ARGV[2] .. '{node:' .. node .. '}:alive') == 1 then
    local users = by_node[node]
    redis.call('PUBLISH', ARGV[2] .. '{node:' .. node .. '}:notify', 'n ' .. ARGV[3] .. '\n' .. table.concat(users, '\n'))
    sent = sent + 1
    named = named + #users
  end
end
return {sent, named}
)lua");
  return s;
}

std::vector<std::string> split_lines(const std::string& payload) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= payload.size()) {
    const auto end = std::min(payload.find('\n', start), payload.size());
    out.push_back(payload.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

std::string node_channel(const std::string& prefix, const std::string& node_id) {
  return prefix + "{node:" + node_id + "}:notify";
}

NotifyChannel::NotifyChannel(store::RedisEndpoints endpoints, std::string prefix, std::string node_id,
                             OnUsers on_users, OnReplace on_replace, OnKick on_kick)
    : endpoints_(endpoints),
      prefix_(std::move(prefix)),
      node_id_(std::move(node_id)),
      channel_(prefix_ + "notify"),
      node_channel_(node_channel(prefix_, node_id_)),
      instance_(random_hex(8)),
      on_users_(std::move(on_users)),
      on_replace_(std::move(on_replace)),
      on_kick_(std::move(on_kick)),
      link_(std::move(endpoints), store::RedisLinkOptions{}) {}

NotifyChannel::~NotifyChannel() { stop(); }

void NotifyChannel::start() {
  if (subscriber_.joinable()) return;
  subscriber_ = std::thread([this] {
    set_thread_name("herald-nsub");
    run_subscriber();
  });
  notifier_ = std::thread([this] {
    set_thread_name("herald-notify");
    run_notifier();
  });
}

void NotifyChannel::stop() {
  {
    std::lock_guard lock(queue_mu_);
    notifier_stop_ = true;
  }
  queue_cv_.notify_all();
  if (notifier_.joinable()) notifier_.join();
  stop_ = true;
  if (subscriber_.joinable()) subscriber_.join();
}

void NotifyChannel::publish(std::span<const std::string> users) {
  if (users.empty()) return;
  std::size_t dropped = 0;
  {
    std::lock_guard lock(queue_mu_);
    if (queue_.empty()) first_queued_ms_ = unix_ms_now();
    for (const auto& u : users) {
      if (queue_.size() >= kQueueMax) {
        ++dropped;
        continue;
      }
      queue_.push_back(u);
    }
    stats_.queued.store(queue_.size(), std::memory_order_relaxed);
  }
  if (dropped > 0) stats_.dropped.fetch_add(dropped, std::memory_order_relaxed);
  queue_cv_.notify_one();
}

void NotifyChannel::run_notifier() {
  std::unique_lock lock(queue_mu_);
  for (;;) {
    queue_cv_.wait(lock, [this] { return notifier_stop_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stopping, and everything queued was sent
    // Everything queued meanwhile goes in this batch: while one lookup is
    // on its way, the next commits' users gather for the next one.
    std::vector<std::string> batch;
    batch.swap(queue_);
    const std::int64_t queued_ms = first_queued_ms_;
    stats_.queued.store(0, std::memory_order_relaxed);
    lock.unlock();
    notify_batch(batch, queued_ms);
    lock.lock();
  }
}

void NotifyChannel::notify_batch(const std::vector<std::string>& users, std::int64_t queued_ms) {
  const std::string header = instance_ + " " + std::to_string(queued_ms);
  // Each user once, in the order they came.
  std::set<std::string_view> seen;
  std::vector<std::string> unique;
  for (const auto& u : users) {
    if (seen.insert(u).second) unique.push_back(u);
  }
  if (link_.cluster()) {
    notify_batch_cluster(unique, header);
    return;
  }
  // Standalone: lookup and PUBLISH in one script per 500 users, one round
  // trip for the batch.
  std::vector<store::RedisCommand> commands;
  for (std::size_t begin = 0; begin < unique.size(); begin += kUsersPerScript) {
    const auto end = std::min(unique.size(), begin + kUsersPerScript);
    std::vector<std::string> keys;
    std::vector<std::string> argv = {node_id_, prefix_, header};
    for (auto i = begin; i < end; ++i) {
      keys.push_back(presence_key(prefix_, unique[i]));
      argv.push_back(unique[i]);
    }
    commands.push_back(store::RedisCommand::eval(notify_script(), std::move(keys), std::move(argv)));
  }
  const auto replies = link_.execute(commands);
  for (const auto& r : replies) {
    if (!store::reply_ok(r.get()) || store::reply_size(r.get()) != 2) {
      stats_.failures.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    stats_.lookups.fetch_add(1, std::memory_order_relaxed);
    stats_.sent.fetch_add(static_cast<std::uint64_t>(store::reply_int(store::reply_at(r.get(), 0)).value_or(0)),
                          std::memory_order_relaxed);
    stats_.users_sent.fetch_add(
        static_cast<std::uint64_t>(store::reply_int(store::reply_at(r.get(), 1)).value_or(0)),
        std::memory_order_relaxed);
  }
}

void NotifyChannel::notify_batch_cluster(const std::vector<std::string>& users, const std::string& header) {
  // A script's keys must share a slot, and the users of a batch are spread
  // over all slots: one script per slot would send a node one notification
  // per slot. So: the presence hashes read in one pipeline per master, then
  // one PUBLISH per node holding any of the users (two round trips).
  std::vector<store::RedisCommand> reads;
  reads.reserve(users.size());
  for (const auto& u : users) reads.push_back(store::RedisCommand::keyed({"HVALS", presence_key(prefix_, u)}));
  const auto replies = link_.execute(reads);
  std::vector<std::string> order;
  std::map<std::string, std::vector<std::string>, std::less<>> by_node;
  bool failed = false;
  for (std::size_t i = 0; i < users.size(); ++i) {
    const redisReply* r = replies[i].get();
    if (!store::reply_ok(r)) {
      failed = true;
      continue;
    }
    std::set<std::string> nodes;
    for (std::size_t j = 0; j < store::reply_size(r); ++j) {
      const auto entry = store::reply_string(store::reply_at(r, j)).value_or("");
      auto node = entry.substr(0, entry.find('\n'));
      if (node == node_id_ || !nodes.insert(node).second) continue;
      auto [it, added] = by_node.try_emplace(node);
      if (added) order.push_back(node);
      it->second.push_back(users[i]);
    }
  }
  stats_.lookups.fetch_add(1, std::memory_order_relaxed);
  if (failed) stats_.failures.fetch_add(1, std::memory_order_relaxed);
  if (order.empty()) return;
  // Dead nodes (alive key expired) are no target, whatever presence says.
  std::vector<store::RedisCommand> checks;
  for (const auto& node : order) checks.push_back(store::RedisCommand::keyed({"EXISTS", node_alive_key(prefix_, node)}));
  const auto alive = link_.execute(checks);
  std::vector<std::string> live;
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (store::reply_int(alive[i].get()).value_or(1) != 0) live.push_back(std::move(order[i]));
  }
  order = std::move(live);
  if (order.empty()) return;
  std::vector<store::RedisCommand> publishes;
  for (const auto& node : order) {
    store::RedisCommand c;  // no key: any master, the cluster bus carries it to all
    c.args = {"PUBLISH", node_channel(prefix_, node), encode('n', header, by_node[node])};
    publishes.push_back(std::move(c));
  }
  const auto answered = link_.execute(publishes);
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (!store::reply_ok(answered[i].get())) {
      stats_.failures.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    stats_.sent.fetch_add(1, std::memory_order_relaxed);
    stats_.users_sent.fetch_add(by_node[order[i]].size(), std::memory_order_relaxed);
  }
}

void NotifyChannel::publish_replace(const std::string& user, const std::string& device,
                                    std::int64_t connected_at_ms, std::uint64_t attempt_session,
                                    std::uint64_t attempt_n, const std::string& conn_id) {
  const std::string fields[] = {user, device, std::to_string(connected_at_ms), std::to_string(attempt_session),
                                std::to_string(attempt_n), conn_id};
  send(encode('r', instance_, fields));
}

bool NotifyChannel::publish_kick(const std::string& user, const std::optional<std::string>& device) {
  const std::string fields[] = {user, device ? "1" + *device : std::string("0")};
  return send(encode('k', instance_, fields));
}

bool NotifyChannel::send(std::string payload) {
  store::RedisCommand c;
  c.args = {"PUBLISH", channel_, std::move(payload)};
  // A replacement that is lost leaves an older connection open until it
  // fails or the user reconnects it (docs/cluster.md); a kick that could
  // not be sent is refused to its caller, who may retry.
  return store::reply_ok(link_.execute_one(c).get());
}

void NotifyChannel::run_subscriber() {
  // Classic Pub/Sub reaches every node of a Redis Cluster, so one
  // subscription to any node hears every publish.
  std::size_t next = 0;
  auto backoff = std::chrono::milliseconds(0);
  while (!stop_) {
    if (backoff.count() > 0) {
      for (auto waited = 0ms; waited < backoff && !stop_; waited += kPoll) std::this_thread::sleep_for(kPoll);
      if (stop_) break;
    }
    const auto& node = endpoints_.nodes[next++ % endpoints_.nodes.size()];
    auto conn = store::RedisConnection::open(node, endpoints_.credentials, 1000ms, 2000ms);
    if (!conn || !conn->send({"SUBSCRIBE", channel_, node_channel_})) {
      backoff = std::min(backoff.count() == 0 ? 50ms : backoff * 2, kBackoffMax);
      continue;
    }
    bool confirmed = false;
    int channels = 0;
    while (!stop_) {
      auto reply = conn->receive(kPoll);
      if (!reply) break;  // broken: reconnect
      if (!*reply) continue;
      const redisReply* r = reply->get();
      const auto kind = store::reply_string(store::reply_at(r, 0)).value_or("");
      if (kind == "subscribe") {
        if (++channels < 2) continue;  // subscribed once both are
        confirmed = true;
        backoff = 0ms;
        subscribed_ = true;
        stats_.subscribes.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (kind == "message") dispatch(store::reply_string(store::reply_at(r, 2)).value_or(""));
    }
    subscribed_ = false;
    if (!stop_) {
      log::warn("redis notification channel lost; resubscribing", {{"node", node}});
      backoff = confirmed ? 50ms : std::min(backoff.count() == 0 ? 50ms : backoff * 2, kBackoffMax);
    }
  }
  subscribed_ = false;
}

void NotifyChannel::dispatch(const std::string& payload) {
  auto lines = split_lines(payload);
  if (lines.size() < 2 || lines[0].size() < 3) return;
  const std::string_view header = std::string_view(lines[0]).substr(2);
  const auto space = header.find(' ');
  if (header.substr(0, space) == instance_) return;
  const char kind = lines[0][0];
  if (kind == 'n' && space != std::string_view::npos && lag_ != nullptr) {
    const std::int64_t queued_ms = std::strtoll(std::string(header.substr(space + 1)).c_str(), nullptr, 10);
    if (queued_ms > 0) lag_->observe(static_cast<double>(std::max<std::int64_t>(0, unix_ms_now() - queued_ms)) / 1000.0);
  }
  lines.erase(lines.begin());
  if (kind == 'n') {
    stats_.received.fetch_add(1, std::memory_order_relaxed);
    stats_.users_received.fetch_add(lines.size(), std::memory_order_relaxed);
    on_users_(lines);
  } else if (kind == 'r' && lines.size() >= 3 && lines.size() <= 6 && lines.size() != 4 && on_replace_) {
    // Older nodes (docs/cluster.md): 3 lines, no attempt; 5, no conn id.
    stats_.replaces.fetch_add(1, std::memory_order_relaxed);
    const bool with_attempt = lines.size() >= 5;
    on_replace_(lines[0], lines[1], std::strtoll(lines[2].c_str(), nullptr, 10),
                with_attempt ? std::strtoull(lines[3].c_str(), nullptr, 10) : 0,
                with_attempt ? std::strtoull(lines[4].c_str(), nullptr, 10) : 0,
                lines.size() == 6 ? lines[5] : std::string());
  } else if (kind == 'k' && lines.size() == 2 && !lines[1].empty() && on_kick_) {
    on_kick_(lines[0], lines[1][0] == '1' ? std::optional<std::string>(lines[1].substr(1)) : std::nullopt);
  }
}

}  // namespace herald::cluster
