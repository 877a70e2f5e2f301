#include "hub/hub.hpp"

#include <algorithm>

namespace herald::hub {

Hub::Shard& Hub::shard_of(std::string_view user) const {
  return shards_[std::hash<std::string_view>{}(user) % kShards];
}

Hub::Added Hub::add(const std::string& user, std::shared_ptr<LiveConnection> conn,
                    std::uint32_t max_per_user) {
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  auto [it, fresh] = s.users.try_emplace(user);
  auto& list = it->second;
  for (auto& existing : list) {
    if (existing->device() == conn->device()) {
      if (conn->attempt().stale_against(existing->attempt())) return {AddResult::stale, nullptr};
      auto old = std::move(existing);
      existing = std::move(conn);
      return {AddResult::replaced, std::move(old)};
    }
  }
  if (list.size() >= max_per_user) {
    if (fresh) s.users.erase(it);
    return {AddResult::user_limit, nullptr};
  }
  list.push_back(std::move(conn));
  size_.fetch_add(1, std::memory_order_relaxed);
  if (fresh) users_.fetch_add(1, std::memory_order_relaxed);
  return {AddResult::added, nullptr};
}

void Hub::remove(const std::string& user, const LiveConnection* conn) {
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  auto it = s.users.find(user);
  if (it == s.users.end()) return;
  auto& list = it->second;
  auto pos = std::find_if(list.begin(), list.end(), [conn](const auto& c) { return c.get() == conn; });
  if (pos == list.end()) return;
  list.erase(pos);
  size_.fetch_sub(1, std::memory_order_relaxed);
  if (list.empty()) {
    s.users.erase(it);
    users_.fetch_sub(1, std::memory_order_relaxed);
  }
}

std::size_t Hub::notify(std::string_view user) {
  auto list = connections(user);
  for (auto& c : list) c->notify();
  return list.size();
}

std::vector<std::shared_ptr<LiveConnection>> Hub::connections(std::string_view user) const {
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  auto it = s.users.find(user);
  if (it == s.users.end()) return {};
  return it->second;
}

std::vector<std::shared_ptr<LiveConnection>> Hub::shard_connections(std::size_t shard) const {
  std::vector<std::shared_ptr<LiveConnection>> out;
  const Shard& s = shards_[shard % kShards];
  std::lock_guard lock(s.mu);
  for (const auto& [user, list] : s.users) out.insert(out.end(), list.begin(), list.end());
  return out;
}

void Hub::for_each(const std::function<void(const std::shared_ptr<LiveConnection>&)>& fn) const {
  for (auto& s : shards_) {
    std::vector<std::shared_ptr<LiveConnection>> copy;
    {
      std::lock_guard lock(s.mu);
      for (auto& [user, list] : s.users) copy.insert(copy.end(), list.begin(), list.end());
    }
    for (auto& c : copy) fn(c);
  }
}

}  // namespace herald::hub
