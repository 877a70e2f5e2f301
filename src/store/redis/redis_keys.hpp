#pragma once
// The names of every Redis key the redis store uses (docs/cluster.md "Redis
// keys"). A user's keys share the hash tag {u:<user>} so that they live in
// one Redis Cluster slot and one Lua script may touch them all; the global
// keys (dead-letter log, schedule, expiry index buckets) have tags of their own.
//
// Pure naming, no I/O; immutable, so any thread may use it.
#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace herald::store {

// The per-user keys, in the order the Lua scripts take them as KEYS.
enum class UserKey : std::size_t {
  meta,      // hash: epoch, head (last seq), lost (max_lost_seq)
  inbox,     // stream: one entry per retained message, id <seq>-0
  expiry,    // sorted set: seq by expires_at
  dedup,     // hash: message id -> "<seq>:<accepted ms>"
  dedup_at,  // sorted set: message id by accepted ms, to forget old ones
  collapse,  // hash: collapse key -> seq of the message holding it
  cursors,   // hash: device -> cursor
  dead_out,  // list: dead letters made here, until the global log has them
  acked,     // sorted set: "device\nseq" by seq, acks above the device's cursor
  lost_marks,  // hash: device -> highest seq that left before the device acked it
  count_
};
inline constexpr std::size_t kUserKeys = static_cast<std::size_t>(UserKey::count_);

// The global expiry index is split in this many sorted sets, each with its
// own tag, so that a cluster spreads its writes over several nodes.
inline constexpr std::size_t kExpiryBuckets = 16;

class RedisKeys {
 public:
  // prefix: prepended to every key (several deployments may share a Redis);
  // must not contain '{' or '}'. Throws std::invalid_argument otherwise.
  explicit RedisKeys(std::string prefix);

  std::string user(std::string_view user, UserKey key) const;
  std::array<std::string, kUserKeys> user_all(std::string_view user) const;

  std::string dead_log() const { return prefix_ + "{dead}:log"; }    // stream: <id>-0 -> j (JSON)
  std::string dead_next() const { return prefix_ + "{dead}:next"; }  // counter: last dead-letter id
  // zset: "user\nseq" scored by its dead-letter id (user ids have no control characters)
  std::string dead_index() const { return prefix_ + "{dead}:index"; }
  std::string expiry_bucket(std::size_t bucket) const;               // zset: user by earliest expiry
  std::size_t bucket_of(std::string_view user) const;

  // The schedule, one slot: due (zset: schedule id by deliver_at), msgs
  // (hash: schedule id -> JSON message), owners (hash: schedule id ->
  // dedup key), taken (hash: dedup key -> schedule id), next (counter).
  std::array<std::string, 5> schedule() const;
  // A message's dedup key in the schedule's owners and taken hashes.
  static std::string schedule_member(std::string_view user, std::string_view id);

 private:
  std::string tag(std::string_view user) const;  // prefix{u:<escaped user>}

  std::string prefix_;
};

}  // namespace herald::store
