#include "store/redis/redis_link.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <string_view>
#include <thread>

#include "core/log.hpp"
#include "store/redis/redis_connection.hpp"

namespace herald::store {

namespace {

// A redirection chain longer than this is a cluster in flux: give up and let
// the caller answer unavailable rather than loop.
constexpr int kMaxRounds = 6;

// Redis' own advice for TRYAGAIN is to retry after a short while.
constexpr std::chrono::milliseconds kTryAgainPause{20};

const std::vector<std::string> kAsking = {"ASKING"};

bool is_error(const RedisReply& r) { return r && r->type == REDIS_REPLY_ERROR; }

std::string_view text(const RedisReply& r) { return {r->str, r->len}; }

}  // namespace

RedisLink::RedisLink(RedisEndpoints endpoints, RedisLinkOptions options)
    : endpoints_(std::move(endpoints)), options_(std::move(options)) {
  if (endpoints_.cluster) refresh_slots();
}

RedisLink::~RedisLink() = default;

RedisLink::Node& RedisLink::node(const NodeAddress& address) {
  std::lock_guard lock(nodes_mu_);
  auto& n = nodes_[address];
  if (!n) n = std::make_unique<Node>();
  return *n;
}

std::unique_ptr<RedisConnection> RedisLink::acquire(const NodeAddress& address) {
  Node& n = node(address);
  {
    std::lock_guard lock(n.mu);
    if (!n.idle.empty()) {
      auto c = std::move(n.idle.back());
      n.idle.pop_back();
      return c;
    }
    if (std::chrono::steady_clock::now() < n.retry_at) return nullptr;  // backing off
  }
  std::string error;
  auto c = RedisConnection::open(address, endpoints_.credentials, options_.connect_timeout,
                                 options_.command_timeout, &error);
  if (!c && error.starts_with("AUTH")) {
    // Not an outage: the server will stay unready until the operator fixes
    // redis_url, so say why (an unreachable Redis is told by the health check).
    static log::Throttle throttle(std::chrono::seconds(10));
    if (const auto held = throttle.admit()) {
      log::warn("redis refused the credentials of redis_url", {{"error", error}, {"node", address}, {"suppressed", *held}});
    }
  }
  std::lock_guard lock(n.mu);
  if (!c) {
    stats_.connect_failures.fetch_add(1, std::memory_order_relaxed);
    n.backoff = n.backoff.count() == 0 ? options_.backoff_initial
                                       : std::min(n.backoff * 2, options_.backoff_max);
    n.retry_at = std::chrono::steady_clock::now() + n.backoff;
    return nullptr;
  }
  if (n.backoff.count() != 0) stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
  n.backoff = std::chrono::milliseconds(0);
  n.retry_at = {};
  return c;
}

void RedisLink::release(std::unique_ptr<RedisConnection> connection) {
  if (!connection || connection->broken()) return;
  Node& n = node(connection->node());
  std::lock_guard lock(n.mu);
  if (n.idle.size() < options_.max_idle_per_node) n.idle.push_back(std::move(connection));
}

void RedisLink::forget_idle(const NodeAddress& address) {
  // One broken connection to a node usually means all of them are (a restart):
  // drop the others rather than fail one call on each.
  Node& n = node(address);
  std::lock_guard lock(n.mu);
  n.idle.clear();
}

NodeAddress RedisLink::route(const RedisCommand& command) const {
  if (!endpoints_.cluster) return endpoints_.nodes.front();
  std::shared_lock lock(slots_mu_);
  if (command.key_arg != 0 && command.key_arg < command.args.size()) {
    if (auto n = slots_.node_for(key_slot(command.args[command.key_arg]))) return *n;
  } else if (!slots_.empty()) {
    return slots_.nodes().front();
  }
  return endpoints_.nodes.front();  // map unknown: a seed answers MOVED
}

void RedisLink::refresh_slots() {
  std::vector<NodeAddress> candidates;
  {
    std::shared_lock lock(slots_mu_);
    candidates = slots_.nodes();
  }
  candidates.insert(candidates.end(), endpoints_.nodes.begin(), endpoints_.nodes.end());
  for (const auto& address : candidates) {
    auto c = acquire(address);
    if (!c) continue;
    auto reply = c->call({"CLUSTER", "SLOTS"});
    if (!reply) {
      forget_idle(address);
      continue;
    }
    stats_.round_trips.fetch_add(1, std::memory_order_relaxed);
    bool ok = false;
    if (*reply && (*reply)->type == REDIS_REPLY_ARRAY && (*reply)->elements > 0) {
      std::unique_lock lock(slots_mu_);
      ok = slots_.update(**reply);
    }
    release(std::move(c));
    if (ok) return;
  }
}

std::vector<RedisReply> RedisLink::execute(const std::vector<RedisCommand>& commands) {
  std::vector<RedisReply> results(commands.size());
  struct Pending {
    std::size_t index;
    NodeAddress node;
    bool asking = false;
  };
  std::vector<Pending> pending;
  pending.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) pending.push_back({i, route(commands[i])});

  for (int round = 0; round < kMaxRounds && !pending.empty(); ++round) {
    // Group by node, keeping each node's commands in their order.
    std::vector<std::pair<NodeAddress, std::vector<Pending>>> groups;
    for (auto& p : pending) {
      auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == p.node; });
      if (it == groups.end()) it = groups.insert(groups.end(), {p.node, {}});
      it->second.push_back(std::move(p));
    }
    pending.clear();
    bool moved = false;
    bool try_again = false;
    for (auto& [address, group] : groups) {
      auto c = acquire(address);
      if (!c) {
        stats_.errors.fetch_add(group.size(), std::memory_order_relaxed);
        continue;
      }
      std::vector<const std::vector<std::string>*> wire;
      for (const auto& p : group) {
        if (p.asking) wire.push_back(&kAsking);
        wire.push_back(&commands[p.index].args);
      }
      auto replies = c->pipeline(wire);
      if (!replies) {
        stats_.errors.fetch_add(group.size(), std::memory_order_relaxed);
        forget_idle(address);
        continue;
      }
      stats_.round_trips.fetch_add(1, std::memory_order_relaxed);
      if (options_.on_round_trip) options_.on_round_trip(wire.size());
      std::size_t r = 0;
      for (const auto& p : group) {
        if (p.asking) ++r;  // ASKING's +OK
        RedisReply reply = std::move((*replies)[r++]);
        const RedisCommand& command = commands[p.index];
        if (is_error(reply)) {
          const auto error = text(reply);
          if (auto redirect = parse_redirect(error)) {
            stats_.redirects.fetch_add(1, std::memory_order_relaxed);
            if (redirect->kind == Redirect::Kind::moved) {
              moved = true;
              std::unique_lock lock(slots_mu_);
              slots_.move(redirect->slot, redirect->node);
            }
            pending.push_back({p.index, redirect->node, redirect->kind == Redirect::Kind::ask});
            continue;
          }
          if (error.starts_with("TRYAGAIN")) {
            // A multi-key script on a slot in migration: the keys are split
            // between two nodes for a moment. Later rounds wait a little.
            try_again = true;
            pending.push_back({p.index, address, p.asking});
            continue;
          }
          if (error.starts_with("NOSCRIPT") && command.script != nullptr) {
            auto loaded = c->call({"SCRIPT", "LOAD", command.script->source});
            stats_.round_trips.fetch_add(1, std::memory_order_relaxed);
            if (loaded) {
              pending.push_back({p.index, address, p.asking});
              continue;
            }
          }
          stats_.errors.fetch_add(1, std::memory_order_relaxed);
        }
        stats_.commands.fetch_add(1, std::memory_order_relaxed);
        results[p.index] = std::move(reply);
      }
      if (c->broken()) forget_idle(address);
      release(std::move(c));
    }
    if (moved) refresh_slots();
    if (try_again && round + 1 < kMaxRounds) std::this_thread::sleep_for(kTryAgainPause);
  }
  stats_.errors.fetch_add(pending.size(), std::memory_order_relaxed);
  return results;
}

RedisReply RedisLink::execute_one(const RedisCommand& command) {
  std::vector<RedisCommand> one;
  one.push_back(command);
  return std::move(execute(one).front());
}

bool RedisLink::ping_all() {
  std::vector<NodeAddress> targets;
  if (endpoints_.cluster) {
    {
      std::shared_lock lock(slots_mu_);
      targets = slots_.nodes();
    }
    if (targets.empty()) {
      refresh_slots();
      std::shared_lock lock(slots_mu_);
      targets = slots_.nodes();
    }
    if (targets.empty()) return false;
  } else {
    targets = endpoints_.nodes;
  }
  for (const auto& address : targets) {
    auto c = acquire(address);
    if (!c) return false;
    auto reply = c->call({"PING"});
    if (!reply || !*reply || (*reply)->type == REDIS_REPLY_ERROR) {
      forget_idle(address);
      return false;
    }
    release(std::move(c));
  }
  return true;
}

}  // namespace herald::store
