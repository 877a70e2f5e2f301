#pragma once
// The on-disk layout of the rocksdb inbox store: column families, key
// builders and record codecs. Pure functions, no rocksdb types, so the
// layout is testable alone and written down in one place.
//
// Column families and keys (be64 = 8-byte big-endian, so keys sort by number):
//   meta      user                                   -> UserMeta
//   messages  user_prefix(user) + be64(seq)          -> message record
//   dedup     user_prefix(user) + id                 -> be64(seq) + be64(accepted_ms)
//   collapse  user_prefix(user) + collapse_key       -> be64(seq)
//   cursors   user_prefix(user) + device             -> be64(cursor)
//   lost_marks user_prefix(user) + device            -> be64(highest seq lost before the device acked it)
//   expiry    be64(expires_at_ms, sign flipped) + user_prefix(user) + be64(seq) -> "" or be64(last)
//             (the messages seq..last expire by expires_at_ms; "" is seq alone)
//   dead      be64(id)                               -> dead-letter record
//   dead_index user_prefix(user) + be64(seq)         -> be64(id) of its dead letter (entries
//             of letters the log dropped are skipped on read, removed by compaction)
//   schedule       be64(deliver_at_ms, sign flipped) + be64(schedule id) -> scheduled record
//   schedule_ids   be64(schedule id)                 -> ScheduleRef (to find the other two keys)
//   schedule_keys  user_prefix(user) + id            -> be64(schedule id) (dedup while scheduled)
//   default   "format" -> "1";  "next_dead_id" -> be64;  "next_schedule_id" -> be64;
//             "scheduled_count" -> be64;  "dead_index_built" -> "1" (dead_index covers the log)
//
// user_prefix(user) is the user with every '\0' written as "\0\x01", then
// "\0\0". No user's prefix is a prefix of another's, so a key range
// [user_prefix(u) + a, user_prefix(u) + b) holds only u's keys, and ids,
// devices and collapse keys may be any bytes. For ordinary users (no NUL)
// it is the user followed by two zero bytes.
//
// Records are a format byte (1) then fields in a fixed order: strings as a
// LEB128 length and bytes, integers as be64. Compact, no parsing library on
// the hot path, and a new field means a new format byte.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "store/message.hpp"

namespace herald::store::layout {

inline constexpr const char* kMetaCf = "meta";
inline constexpr const char* kMessagesCf = "messages";
inline constexpr const char* kDedupCf = "dedup";
inline constexpr const char* kCollapseCf = "collapse";
inline constexpr const char* kCursorsCf = "cursors";
inline constexpr const char* kExpiryCf = "expiry";
inline constexpr const char* kDeadCf = "dead";
inline constexpr const char* kDeadIndexCf = "dead_index";
inline constexpr const char* kLostMarksCf = "lost_marks";
inline constexpr const char* kScheduleCf = "schedule";
inline constexpr const char* kScheduleIdsCf = "schedule_ids";
inline constexpr const char* kScheduleKeysCf = "schedule_keys";

inline constexpr std::string_view kFormatKey = "format";
// 2: an expiry entry may cover a run of seqs (format 1 had one per message;
// a format-1 store is read as it is and marked 2 when opened).
inline constexpr std::string_view kFormatValue = "2";
inline constexpr std::string_view kFormatValueV1 = "1";
inline constexpr std::string_view kNextDeadIdKey = "next_dead_id";
inline constexpr std::string_view kNextScheduleIdKey = "next_schedule_id";
inline constexpr std::string_view kScheduledCountKey = "scheduled_count";
inline constexpr std::string_view kDeadIndexBuiltKey = "dead_index_built";

// Persisted per-user state of an inbox.
struct UserMeta {
  std::string epoch;               // random hex, made when the inbox is first created
  std::uint64_t head_seq = 0;      // highest seq ever assigned
  std::uint64_t max_lost_seq = 0;  // highest seq that left by expiry or trim unacked
  std::uint64_t low_seq = 1;       // every retained seq is >= this (skips tombstones on trim)
  std::uint64_t count = 0;         // retained messages (retention cap)
  friend bool operator==(const UserMeta&, const UserMeta&) = default;
};

struct DedupRecord {
  std::uint64_t seq = 0;
  std::int64_t accepted_ms = 0;  // the append's now, as in the memory store
};

// Where a scheduled message is kept, found from its schedule id.
struct ScheduleRef {
  std::int64_t deliver_at_ms = 0;
  std::string user;
  std::string id;
  friend bool operator==(const ScheduleRef&, const ScheduleRef&) = default;
};

// ---- integers ----
void put_be64(std::string& out, std::uint64_t v);
std::uint64_t get_be64(std::string_view in);  // in.size() >= 8
std::string be64(std::uint64_t v);

// ---- keys ----
std::string user_prefix(std::string_view user);
// First key after every key that starts with user_prefix(user).
std::string user_prefix_end(std::string_view user);
// Parses a user_prefix at the front of key: the user, and advances key past it.
std::optional<std::string> take_user_prefix(std::string_view& key);
// Length of the user_prefix at the front of key (through its "\0\0"); 0 when
// there is none.
std::size_t user_prefix_size(std::string_view key);

std::string message_key(std::string_view user, std::uint64_t seq);
std::string user_key(std::string_view user, std::string_view suffix);  // dedup, collapse, cursors
std::string expiry_time_key(std::int64_t expires_at_ms);               // the sortable time part
std::string expiry_key(std::int64_t expires_at_ms, std::string_view user, std::uint64_t seq);

struct ExpiryEntry {
  std::int64_t expires_at_ms = 0;
  std::string user;
  std::uint64_t seq = 0;
};
std::optional<ExpiryEntry> parse_expiry_key(std::string_view key);
// The value of an expiry entry for the run first..last, and the last seq
// an entry's value names (first itself for "" or anything unreadable).
std::string expiry_run_value(std::uint64_t first, std::uint64_t last);
std::uint64_t expiry_run_last(std::string_view value, std::uint64_t first);

std::string schedule_key(std::int64_t deliver_at_ms, std::uint64_t schedule_id);
struct ScheduleKey {
  std::int64_t deliver_at_ms = 0;
  std::uint64_t schedule_id = 0;
};
std::optional<ScheduleKey> parse_schedule_key(std::string_view key);

// ---- records ----
std::string encode_message(const StoredMessage& m);  // seq lives in the key
std::optional<StoredMessage> decode_message(std::string_view in, std::uint64_t seq);

std::string encode_meta(const UserMeta& m);
std::optional<UserMeta> decode_meta(std::string_view in);

std::string encode_dedup(const DedupRecord& d);
std::optional<DedupRecord> decode_dedup(std::string_view in);

std::string encode_dead_letter(const DeadLetter& d);  // id lives in the key
std::optional<DeadLetter> decode_dead_letter(std::string_view in, std::uint64_t id);

std::string encode_scheduled(const NewMessage& m);
std::optional<NewMessage> decode_scheduled(std::string_view in);

std::string encode_schedule_ref(const ScheduleRef& r);
std::optional<ScheduleRef> decode_schedule_ref(std::string_view in);

}  // namespace herald::store::layout
