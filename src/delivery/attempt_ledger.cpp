#include "delivery/attempt_ledger.hpp"

#include <functional>

namespace herald::delivery {

AttemptLedger::Shard& AttemptLedger::shard_of(std::string_view user) const {
  return shards_[std::hash<std::string_view>{}(user) % kShards];
}

AttemptLedger::Counts* AttemptLedger::find_locked(Shard& s, std::string_view user, std::string_view device) {
  auto u = s.users.find(user);
  if (u == s.users.end()) return nullptr;
  auto d = u->second.find(device);
  return d == u->second.end() ? nullptr : &d->second;
}

// A new (device, seq) entry, if the bound allows; nothing is created (not
// even the user's or device's map) when it does not.
std::uint32_t* AttemptLedger::add_locked(Shard& s, std::string_view user, std::string_view device,
                                         std::uint64_t seq) {
  if (entries_.load(std::memory_order_relaxed) >= max_entries_) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  entries_.fetch_add(1, std::memory_order_relaxed);
  return &s.users[std::string(user)][std::string(device)].emplace(seq, 0).first->second;
}

void AttemptLedger::record_send(std::string_view user, std::string_view device, std::uint64_t seq) {
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  if (Counts* counts = find_locked(s, user, device)) {
    if (auto it = counts->find(seq); it != counts->end()) {
      if ((it->second & ~kAckedMark) < ~kAckedMark) ++it->second;
      return;
    }
  }
  if (std::uint32_t* sends = add_locked(s, user, device, seq)) *sends = 1;
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
  std::size_t n = 0;
  for (auto it = counts.begin(); it != end; ++it, ++n) {
    const std::uint32_t sends = it->second & ~kAckedMark;
    if (sends < 2) continue;
    std::string key = acked_key(user, device, it->first);
    auto [slot, fresh] = s.acked_retries.try_emplace(key, sends);
    if (!fresh) {
      slot->second = sends;  // sent again after a resume below the cursor: the later count
      continue;
    }
    s.acked_order.push_back(std::move(key));
    if (s.acked_order.size() > kAckedRetriesPerShard) {
      s.acked_retries.erase(s.acked_order.front());
      s.acked_order.pop_front();
    }
  }
  counts.erase(counts.begin(), end);
  entries_.fetch_sub(n, std::memory_order_relaxed);
  if (counts.empty()) u->second.erase(d);
  if (u->second.empty()) s.users.erase(u);
}

std::uint32_t AttemptLedger::attempts(std::string_view user, std::string_view device,
                                      std::uint64_t seq) const {
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  if (const Counts* counts = find_locked(s, user, device)) {
    if (auto it = counts->find(seq); it != counts->end()) return it->second & ~kAckedMark;
  }
  if (s.acked_retries.empty()) return 0;
  auto acked = s.acked_retries.find(acked_key(user, device, seq));
  return acked == s.acked_retries.end() ? 0 : acked->second;
}

void AttemptLedger::mark_acked(std::string_view user, std::string_view device, std::uint64_t seq) {
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  if (Counts* counts = find_locked(s, user, device)) {
    if (auto it = counts->find(seq); it != counts->end()) {
      it->second |= kAckedMark;
      return;
    }
  }
  // Its sends were not recorded (the ledger was full); the mark still is, if there is room.
  if (std::uint32_t* sends = add_locked(s, user, device, seq)) *sends = 1 | kAckedMark;
}

bool AttemptLedger::acked_above_cursor(std::string_view user, std::string_view device, std::uint64_t seq) const {
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  const Counts* counts = find_locked(s, user, device);
  if (counts == nullptr) return false;
  auto it = counts->find(seq);
  return it != counts->end() && (it->second & kAckedMark) != 0;
}

std::size_t AttemptLedger::acked_retries() const {
  std::size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.acked_order.size();
  }
  return n;
}

// Lengths first: a user id may hold any character but controls, so no
// separator alone would keep two (user, device, seq) triples apart.
std::string AttemptLedger::acked_key(std::string_view user, std::string_view device, std::uint64_t seq) {
  std::string key = std::to_string(user.size());
  key += ':';
  key.append(user);
  key += std::to_string(device.size());
  key += ':';
  key.append(device);
  key += std::to_string(seq);
  return key;
}

}  // namespace herald::delivery
