#include "cluster/node_id_claim.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <thread>

#include "cluster/presence.hpp"
#include "core/ids.hpp"
#include "store/redis/redis_command.hpp"
#include "store/redis/redis_link.hpp"

namespace herald::cluster {

namespace {

struct AliveKey {
  std::optional<std::string> value;
  std::int64_t pttl_ms = -2;
};

std::optional<AliveKey> read_alive(store::RedisLink& link, const std::string& key) {
  const auto replies = link.execute({store::RedisCommand::keyed({"GET", key}), store::RedisCommand::keyed({"PTTL", key})});
  if (replies.size() != 2 || !store::reply_ok(replies[0].get())) return std::nullopt;
  const auto pttl = store::reply_int(replies[1].get());
  if (!pttl) return std::nullopt;
  return AliveKey{store::reply_string(replies[0].get()), *pttl};
}

// One heartbeat period and a margin: a live holder refreshes within it.
constexpr auto kWatch = std::chrono::milliseconds(1200);

bool held_by_a_live_node(store::RedisLink& link, const std::string& key) {
  const auto first = read_alive(link, key);
  if (!first || !first->value) return false;
  const auto before = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(kWatch);
  const auto second = read_alive(link, key);
  if (!second || !second->value) return false;
  if (second->value != first->value) return true;
  const auto waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - before).count();
  // Not refreshed, the expiry would have fallen by about `waited`.
  return second->pttl_ms > first->pttl_ms - waited + 500;
}

}  // namespace

NodeIdClaim claim_node_id(const store::RedisEndpoints& endpoints, const std::string& prefix,
                          const std::string& wanted, bool defaulted) {
  store::RedisLink link(endpoints, {});
  if (!held_by_a_live_node(link, node_alive_key(prefix, wanted))) return {wanted, false};
  if (!defaulted) {
    throw std::runtime_error("node_id '" + wanted +
                             "' is in use by another live node on this Redis; give every node its own node_id "
                             "(HERALD_NODE_ID)");
  }
  for (int i = 0; i < 8; ++i) {
    std::string candidate = wanted + "-" + random_hex(2);
    if (!held_by_a_live_node(link, node_alive_key(prefix, candidate))) return {std::move(candidate), true};
  }
  throw std::runtime_error("no free node_id derived from '" + wanted + "'; set HERALD_NODE_ID");
}

}  // namespace herald::cluster
