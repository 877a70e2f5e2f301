#include "hub/hub.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

namespace herald::hub {

Hub::Shard& Hub::shard_of(std::string_view user) const {
  return shards_[std::hash<std::string_view>{}(user) % kShards];
}

Hub::Added Hub::add(std::shared_ptr<LiveConnection> conn, std::uint32_t max_per_user) {
  const std::string& user = conn->user();
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  auto [first, last] = s.users.equal_range(std::string_view(user));
  std::uint32_t devices = 0;
  for (auto it = first; it != last; ++it, ++devices) {
    if (it->second->device() != conn->device()) continue;
    if (conn->attempt().stale_against(it->second->attempt())) return {AddResult::stale, nullptr};
    // The key views the old connection's user string: rekey the node to
    // the new one's before the old one can go.
    auto node = s.users.extract(it);
    auto old = std::exchange(node.mapped(), std::move(conn));
    node.key() = node.mapped()->user();
    s.users.insert(std::move(node));
    return {AddResult::replaced, std::move(old)};
  }
  if (devices >= max_per_user) return {AddResult::user_limit, nullptr};
  s.users.emplace(std::string_view(user), std::move(conn));
  size_.fetch_add(1, std::memory_order_relaxed);
  if (devices == 0) users_.fetch_add(1, std::memory_order_relaxed);
  return {AddResult::added, nullptr};
}

void Hub::remove(const LiveConnection& conn) {
  const std::string& user = conn.user();
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  auto [first, last] = s.users.equal_range(std::string_view(user));
  auto pos = std::find_if(first, last, [&conn](const auto& e) { return e.second.get() == &conn; });
  if (pos == last) return;
  const bool only = std::next(first) == last;
  s.users.erase(pos);
  size_.fetch_sub(1, std::memory_order_relaxed);
  if (only) users_.fetch_sub(1, std::memory_order_relaxed);
}

std::size_t Hub::notify(std::string_view user) {
  auto list = connections(user);
  for (auto& c : list) c->notify();
  return list.size();
}

std::vector<std::shared_ptr<LiveConnection>> Hub::connections(std::string_view user) const {
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  std::vector<std::shared_ptr<LiveConnection>> out;
  auto [first, last] = s.users.equal_range(user);
  for (auto it = first; it != last; ++it) out.push_back(it->second);
  return out;
}

std::vector<std::shared_ptr<LiveConnection>> Hub::shard_connections(std::size_t shard) const {
  std::vector<std::shared_ptr<LiveConnection>> out;
  const Shard& s = shards_[shard % kShards];
  std::lock_guard lock(s.mu);
  out.reserve(s.users.size());
  for (const auto& [user, conn] : s.users) out.push_back(conn);
  return out;
}

void Hub::for_each(const std::function<void(const std::shared_ptr<LiveConnection>&)>& fn) const {
  for (auto& s : shards_) {
    std::vector<std::shared_ptr<LiveConnection>> copy;
    {
      std::lock_guard lock(s.mu);
      copy.reserve(s.users.size());
      for (const auto& [user, conn] : s.users) copy.push_back(conn);
    }
    for (auto& c : copy) fn(c);
  }
}

}  // namespace herald::hub
