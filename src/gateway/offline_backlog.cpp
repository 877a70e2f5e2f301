#include "gateway/offline_backlog.hpp"

#include <functional>

namespace herald::gateway {

OfflineBacklog::Shard& OfflineBacklog::shard_of(std::string_view user) {
  return shards_[std::hash<std::string_view>{}(user) % kShards];
}

void OfflineBacklog::add(std::string_view user) {
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  auto it = s.counts.find(std::string(user));
  if (it == s.counts.end()) {
    if (users_.load(std::memory_order_relaxed) >= max_users_) {
      untracked_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    it = s.counts.emplace(std::string(user), 0).first;
    users_.fetch_add(1, std::memory_order_relaxed);
  }
  ++it->second;
  messages_.fetch_add(1, std::memory_order_relaxed);
}

void OfflineBacklog::clear(std::string_view user) {
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  auto it = s.counts.find(std::string(user));
  if (it == s.counts.end()) return;
  messages_.fetch_sub(it->second, std::memory_order_relaxed);
  users_.fetch_sub(1, std::memory_order_relaxed);
  s.counts.erase(it);
}

}  // namespace herald::gateway
