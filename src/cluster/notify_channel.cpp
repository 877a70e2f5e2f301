#include "cluster/notify_channel.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "core/ids.hpp"
#include "core/log.hpp"
#include "store/redis/redis_connection.hpp"

namespace herald::cluster {

namespace {

using namespace std::chrono_literals;

constexpr auto kPoll = 100ms;           // how often the subscriber looks at the stop flag
constexpr auto kBackoffMax = 1000ms;    // a restarted Redis is subscribed to within a second

// "<kind> <instance>\n<field>\n<field>...": user and device ids have no
// control characters (PROTOCOL.md 2, 10). Kinds: n (fields: users with new
// messages), r (fields: user, device, connected at ms), k (fields: user,
// then "1<device>" for one device or "0" for all).
std::string encode(char kind, const std::string& instance, std::span<const std::string> fields) {
  std::string out = std::string(1, kind) + " " + instance;
  for (const auto& f : fields) {
    out += '\n';
    out += f;
  }
  return out;
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

NotifyChannel::NotifyChannel(store::RedisEndpoints endpoints, std::string channel, OnUsers on_users,
                             OnReplace on_replace, OnKick on_kick)
    : endpoints_(endpoints),
      channel_(std::move(channel)),
      instance_(random_hex(8)),
      on_users_(std::move(on_users)),
      on_replace_(std::move(on_replace)),
      on_kick_(std::move(on_kick)),
      link_(std::move(endpoints), store::RedisLinkOptions{}) {}

NotifyChannel::~NotifyChannel() { stop(); }

void NotifyChannel::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void NotifyChannel::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void NotifyChannel::publish(std::span<const std::string> users) {
  if (users.empty()) return;
  send(encode('n', instance_, users));
}

void NotifyChannel::publish_replace(const std::string& user, const std::string& device,
                                    std::int64_t connected_at_ms) {
  const std::string fields[] = {user, device, std::to_string(connected_at_ms)};
  send(encode('r', instance_, fields));
}

void NotifyChannel::publish_kick(const std::string& user, const std::optional<std::string>& device) {
  const std::string fields[] = {user, device ? "1" + *device : std::string("0")};
  send(encode('k', instance_, fields));
}

void NotifyChannel::send(std::string payload) {
  store::RedisCommand c;
  c.args = {"PUBLISH", channel_, std::move(payload)};
  const auto r = link_.execute_one(c);
  if (store::reply_ok(r.get())) {
    stats_.published.fetch_add(1, std::memory_order_relaxed);
  } else {
    stats_.publish_failures.fetch_add(1, std::memory_order_relaxed);
  }
}

void NotifyChannel::run() {
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
    auto conn = store::RedisConnection::open(node, 1000ms, 2000ms);
    if (!conn || !conn->send({"SUBSCRIBE", channel_})) {
      backoff = std::min(backoff.count() == 0 ? 50ms : backoff * 2, kBackoffMax);
      continue;
    }
    bool confirmed = false;
    while (!stop_) {
      auto reply = conn->receive(kPoll);
      if (!reply) break;  // broken: reconnect
      if (!*reply) continue;
      const redisReply* r = reply->get();
      const auto kind = store::reply_string(store::reply_at(r, 0)).value_or("");
      if (kind == "subscribe") {
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
  if (lines.size() < 2 || lines[0].size() < 3 || lines[0].substr(2) == instance_) return;
  const char kind = lines[0][0];
  lines.erase(lines.begin());
  if (kind == 'n') {
    stats_.received.fetch_add(1, std::memory_order_relaxed);
    on_users_(lines);
  } else if (kind == 'r' && lines.size() == 3 && on_replace_) {
    stats_.replaces.fetch_add(1, std::memory_order_relaxed);
    on_replace_(lines[0], lines[1], std::strtoll(lines[2].c_str(), nullptr, 10));
  } else if (kind == 'k' && lines.size() == 2 && !lines[1].empty() && on_kick_) {
    on_kick_(lines[0], lines[1][0] == '1' ? std::optional<std::string>(lines[1].substr(1)) : std::nullopt);
  }
}

}  // namespace herald::cluster
