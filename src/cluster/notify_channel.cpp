#include "cluster/notify_channel.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>

#include "core/ids.hpp"
#include "core/log.hpp"
#include "store/redis/redis_connection.hpp"

namespace herald::cluster {

namespace {

using namespace std::chrono_literals;

constexpr auto kPoll = 100ms;           // how often the subscriber looks at the stop flag
constexpr auto kBackoffMax = 1000ms;    // a restarted Redis is subscribed to within a second

// "instance\nuser\nuser...": user ids have no control characters (PROTOCOL.md 10).
std::string encode(const std::string& instance, std::span<const std::string> users) {
  std::string out = instance;
  for (const auto& u : users) {
    out += '\n';
    out += u;
  }
  return out;
}

}  // namespace

NotifyChannel::NotifyChannel(store::RedisEndpoints endpoints, std::string channel, OnUsers on_users)
    : endpoints_(endpoints),
      channel_(std::move(channel)),
      instance_(random_hex(8)),
      on_users_(std::move(on_users)),
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
  store::RedisCommand c;
  c.args = {"PUBLISH", channel_, encode(instance_, users)};
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
      if (kind != "message") continue;
      const auto payload = store::reply_string(store::reply_at(r, 2)).value_or("");
      std::vector<std::string> users;
      std::size_t start = 0;
      std::string from;
      while (start <= payload.size()) {
        const auto end = std::min(payload.find('\n', start), payload.size());
        if (from.empty() && start == 0) {
          from = payload.substr(0, end);
        } else {
          users.push_back(payload.substr(start, end - start));
        }
        start = end + 1;
      }
      if (from == instance_ || users.empty()) continue;
      stats_.received.fetch_add(1, std::memory_order_relaxed);
      on_users_(users);
    }
    subscribed_ = false;
    if (!stop_) {
      log::warn("redis notification channel lost; resubscribing", {{"node", node}});
      backoff = confirmed ? 50ms : std::min(backoff.count() == 0 ? 50ms : backoff * 2, kBackoffMax);
    }
  }
  subscribed_ = false;
}

}  // namespace herald::cluster
