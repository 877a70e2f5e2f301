#include "delivery/attempt_ledger.hpp"

#include <functional>

namespace herald::delivery {

AttemptLedger::Shard& AttemptLedger::shard_of(std::string_view user) const {
  return shards_[std::hash<std::string_view>{}(user) % kShards];
}

void AttemptLedger::record_send(std::string_view user, std::string_view device, std::uint64_t seq) {
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  Counts& counts = s.users[std::string(user)][std::string(device)];
  auto it = counts.find(seq);
  if (it != counts.end()) {
    ++it->second;
    return;
  }
  if (entries_.load(std::memory_order_relaxed) >= max_entries_) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  counts.emplace(seq, 1);
  entries_.fetch_add(1, std::memory_order_relaxed);
}

void AttemptLedger::forget_upto(std::string_view user, std::string_view device, std::uint64_t cursor) {
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  auto u = s.users.find(user);
  if (u == s.users.end()) return;
  auto d = u->second.find(device);
  if (d == u->second.end()) return;
  Counts& counts = d->second;
  const auto end = counts.upper_bound(cursor);
  const auto n = static_cast<std::size_t>(std::distance(counts.begin(), end));
  counts.erase(counts.begin(), end);
  entries_.fetch_sub(n, std::memory_order_relaxed);
  if (counts.empty()) u->second.erase(d);
  if (u->second.empty()) s.users.erase(u);
}

std::uint32_t AttemptLedger::attempts(std::string_view user, std::string_view device,
                                      std::uint64_t seq) const {
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  auto u = s.users.find(user);
  if (u == s.users.end()) return 0;
  auto d = u->second.find(device);
  if (d == u->second.end()) return 0;
  auto it = d->second.find(seq);
  return it == d->second.end() ? 0 : it->second;
}

}  // namespace herald::delivery
