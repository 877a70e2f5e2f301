#pragma once
// How many times each unacked message was sent to each device, over all of
// the device's connections (PROTOCOL.md 10: `attempts` in section 8). Kept
// in memory: a restart forgets the counts, not the messages.
//
// Sharded by user; each shard's mutex is held for one map update. Bounded
// by max_entries: beyond it new counts are not recorded (and counted as
// dropped), so memory stays flat when devices never come back.
//
// An ack ends a message's count. A message sent once needs no record after
// that (the API shows an acked message as sent at least once); one that
// was sent again before its ack keeps its count among the most recent
// kAckedRetriesPerShard such messages of its shard, oldest out first (at
// most 65,536 in all, outside max_entries).
#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/string_map.hpp"

namespace herald::delivery {

class AttemptLedger {
 public:
  AttemptLedger() : AttemptLedger(1'000'000) {}  // a million unacked sends: ~100 MB at most
  explicit AttemptLedger(std::size_t max_entries) : max_entries_(max_entries) {}

  void record_send(std::string_view user, std::string_view device, std::uint64_t seq);
  // The device acked everything up to cursor: its counts there are done.
  void forget_upto(std::string_view user, std::string_view device, std::uint64_t cursor);
  // Sends so far; for an acked message, its count if it was sent more than
  // once and is still remembered, else 0.
  std::uint32_t attempts(std::string_view user, std::string_view device, std::uint64_t seq) const;

  // An ack above the device's cursor (a gap before it): the device has the
  // message, though the cursor cannot pass it yet. The mark outlives the
  // connection (inspection shows the message acked, and a TTL or trim does
  // not make it a dead letter of this device); forget_upto() ends it with
  // the count. A later connection still sends it again from the cursor,
  // and a restart forgets the mark: a redelivery, never a loss.
  void mark_acked(std::string_view user, std::string_view device, std::uint64_t seq);
  bool acked_above_cursor(std::string_view user, std::string_view device, std::uint64_t seq) const;

  static constexpr std::size_t kAckedRetriesPerShard = 1024;

  std::size_t entries() const { return entries_.load(std::memory_order_relaxed); }
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  // Counts kept for messages acked after more than one send (at most
  // kShards * kAckedRetriesPerShard).
  std::size_t acked_retries() const;

 private:
  using Counts = std::map<std::uint64_t, std::uint32_t>;  // seq -> sends, | kAckedMark once marked
  static constexpr std::uint32_t kAckedMark = 0x80000000u;
  struct Shard {
    mutable std::mutex mu;
    StringMap<StringMap<Counts>> users;
    // Acked after more than one send: key (acked_key()) -> sends, and the
    // keys oldest first.
    StringMap<std::uint32_t> acked_retries;
    std::deque<std::string> acked_order;
  };
  // The device's counts, or null; under the shard's lock.
  static Counts* find_locked(Shard& s, std::string_view user, std::string_view device);
  std::uint32_t* add_locked(Shard& s, std::string_view user, std::string_view device, std::uint64_t seq);
  static std::string acked_key(std::string_view user, std::string_view device, std::uint64_t seq);
  static constexpr std::size_t kShards = 64;
  Shard& shard_of(std::string_view user) const;

  const std::size_t max_entries_;
  mutable std::array<Shard, kShards> shards_;
  std::atomic<std::size_t> entries_{0};
  std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace herald::delivery
