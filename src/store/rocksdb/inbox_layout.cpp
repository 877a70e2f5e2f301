#include "store/rocksdb/inbox_layout.hpp"

#include <algorithm>

namespace herald::store::layout {

namespace {

constexpr char kRecordFormat = 1;

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_str(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

void put_i64(std::string& out, std::int64_t v) { put_be64(out, static_cast<std::uint64_t>(v)); }

// Reads fields in order; any short or malformed field clears ok and the
// rest read as zero/empty.
class RecordReader {
 public:
  explicit RecordReader(std::string_view in) : in_(in) {
    if (in_.empty() || in_[0] != kRecordFormat) {
      ok_ = false;
    } else {
      in_.remove_prefix(1);
    }
  }

  std::uint64_t u64() {
    if (!ok_ || in_.size() < 8) return fail<std::uint64_t>();
    const std::uint64_t v = get_be64(in_);
    in_.remove_prefix(8);
    return v;
  }
  std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
  std::uint8_t u8() {
    if (!ok_ || in_.empty()) return fail<std::uint8_t>();
    const auto v = static_cast<std::uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return v;
  }
  std::string str() {
    std::uint64_t len = 0;
    for (int shift = 0;; shift += 7) {
      if (!ok_ || in_.empty() || shift > 63) return fail<std::string>();
      const auto b = static_cast<std::uint8_t>(in_[0]);
      in_.remove_prefix(1);
      len |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) break;
    }
    if (len > in_.size()) return fail<std::string>();
    std::string s(in_.substr(0, len));
    in_.remove_prefix(len);
    return s;
  }
  // True when every field read and nothing is left over.
  bool done() const { return ok_ && in_.empty(); }

 private:
  template <class T>
  T fail() {
    ok_ = false;
    return T{};
  }
  std::string_view in_;
  bool ok_ = true;
};

}  // namespace

// ---- integers ----

void put_be64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

std::uint64_t get_be64(std::string_view in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<std::uint8_t>(in[static_cast<std::size_t>(i)]);
  return v;
}

std::string be64(std::uint64_t v) {
  std::string out;
  out.reserve(8);
  put_be64(out, v);
  return out;
}

// ---- keys ----

namespace {
void append_escaped_user(std::string& out, std::string_view user) {
  for (char c : user) {
    out.push_back(c);
    if (c == '\0') out.push_back('\x01');
  }
}
}  // namespace

std::string user_prefix(std::string_view user) {
  std::string out;
  out.reserve(user.size() + 2 + 8);
  append_escaped_user(out, user);
  out.push_back('\0');
  out.push_back('\0');
  return out;
}

std::string user_prefix_end(std::string_view user) {
  std::string out;
  out.reserve(user.size() + 2);
  append_escaped_user(out, user);
  out.push_back('\0');
  out.push_back('\x01');
  return out;
}

std::optional<std::string> take_user_prefix(std::string_view& key) {
  std::string user;
  for (std::size_t i = 0; i + 1 < key.size(); ++i) {
    if (key[i] != '\0') {
      user.push_back(key[i]);
      continue;
    }
    if (key[i + 1] == '\0') {
      key.remove_prefix(i + 2);
      return user;
    }
    if (key[i + 1] != '\x01') return std::nullopt;
    user.push_back('\0');
    ++i;
  }
  return std::nullopt;
}

std::size_t user_prefix_size(std::string_view key) {
  for (std::size_t i = 0; i + 1 < key.size(); ++i) {
    if (key[i] != '\0') continue;
    if (key[i + 1] == '\0') return i + 2;
    if (key[i + 1] != '\x01') return 0;
    ++i;  // an escaped NUL of the user
  }
  return 0;
}

std::string message_key(std::string_view user, std::uint64_t seq) {
  std::string k = user_prefix(user);
  put_be64(k, seq);
  return k;
}

std::string user_key(std::string_view user, std::string_view suffix) {
  std::string k = user_prefix(user);
  k.append(suffix);
  return k;
}

std::string expiry_time_key(std::int64_t expires_at_ms) {
  // Flipping the sign bit makes two's complement sort as unsigned.
  return be64(static_cast<std::uint64_t>(expires_at_ms) ^ (std::uint64_t{1} << 63));
}

std::string expiry_key(std::int64_t expires_at_ms, std::string_view user, std::uint64_t seq) {
  std::string k = expiry_time_key(expires_at_ms);
  append_escaped_user(k, user);
  k.push_back('\0');
  k.push_back('\0');
  put_be64(k, seq);
  return k;
}

std::optional<ExpiryEntry> parse_expiry_key(std::string_view key) {
  if (key.size() < 8 + 2 + 8) return std::nullopt;
  ExpiryEntry e;
  e.expires_at_ms = static_cast<std::int64_t>(get_be64(key) ^ (std::uint64_t{1} << 63));
  key.remove_prefix(8);
  auto user = take_user_prefix(key);
  if (!user || key.size() != 8) return std::nullopt;
  e.user = std::move(*user);
  e.seq = get_be64(key);
  return e;
}

std::string expiry_run_value(std::uint64_t first, std::uint64_t last) {
  return last > first ? be64(last) : std::string();
}

std::uint64_t expiry_run_last(std::string_view value, std::uint64_t first) {
  return value.size() == 8 ? std::max(first, get_be64(value)) : first;
}

std::string schedule_key(std::int64_t deliver_at_ms, std::uint64_t schedule_id) {
  std::string k = expiry_time_key(deliver_at_ms);
  put_be64(k, schedule_id);
  return k;
}

std::optional<ScheduleKey> parse_schedule_key(std::string_view key) {
  if (key.size() != 16) return std::nullopt;
  return ScheduleKey{static_cast<std::int64_t>(get_be64(key) ^ (std::uint64_t{1} << 63)),
                     get_be64(key.substr(8))};
}

// ---- records ----

std::string encode_message(const StoredMessage& m) {
  std::string out;
  out.reserve(1 + m.id.size() + m.event.size() + m.data_json.size() + m.collapse_key.size() +
              m.trace_id.size() + 5 * 2 + 16);
  out.push_back(kRecordFormat);
  put_str(out, m.id);
  put_str(out, m.event);
  put_str(out, m.data_json);
  put_str(out, m.collapse_key);
  put_str(out, m.trace_id);
  put_i64(out, m.ts_ms);
  put_i64(out, m.expires_at_ms);
  return out;
}

std::optional<StoredMessage> decode_message(std::string_view in, std::uint64_t seq) {
  RecordReader r(in);
  StoredMessage m;
  m.seq = seq;
  m.id = r.str();
  m.event = r.str();
  m.data_json = r.str();
  m.collapse_key = r.str();
  m.trace_id = r.str();
  m.ts_ms = r.i64();
  m.expires_at_ms = r.i64();
  if (!r.done()) return std::nullopt;
  return m;
}

std::string encode_meta(const UserMeta& m) {
  std::string out;
  out.push_back(kRecordFormat);
  put_str(out, m.epoch);
  put_be64(out, m.head_seq);
  put_be64(out, m.max_lost_seq);
  put_be64(out, m.low_seq);
  put_be64(out, m.count);
  return out;
}

std::optional<UserMeta> decode_meta(std::string_view in) {
  RecordReader r(in);
  UserMeta m;
  m.epoch = r.str();
  m.head_seq = r.u64();
  m.max_lost_seq = r.u64();
  m.low_seq = r.u64();
  m.count = r.u64();
  if (!r.done()) return std::nullopt;
  return m;
}

std::string encode_dedup(const DedupRecord& d) {
  std::string out;
  out.reserve(16);
  put_be64(out, d.seq);
  put_i64(out, d.accepted_ms);
  return out;
}

std::optional<DedupRecord> decode_dedup(std::string_view in) {
  if (in.size() != 16) return std::nullopt;
  return DedupRecord{get_be64(in), static_cast<std::int64_t>(get_be64(in.substr(8)))};
}

std::string encode_dead_letter(const DeadLetter& d) {
  std::string out;
  out.push_back(kRecordFormat);
  put_str(out, d.user);
  put_be64(out, d.seq);
  put_str(out, d.message_id);
  put_str(out, d.event);
  put_str(out, d.data_json);
  out.push_back(static_cast<char>(d.reason));
  put_i64(out, d.ts_ms);
  put_i64(out, d.dead_at_ms);
  return out;
}

std::optional<DeadLetter> decode_dead_letter(std::string_view in, std::uint64_t id) {
  RecordReader r(in);
  DeadLetter d;
  d.id = id;
  d.user = r.str();
  d.seq = r.u64();
  d.message_id = r.str();
  d.event = r.str();
  d.data_json = r.str();
  const std::uint8_t reason = r.u8();
  d.ts_ms = r.i64();
  d.dead_at_ms = r.i64();
  if (!r.done() || reason > static_cast<std::uint8_t>(DeadReason::trimmed)) return std::nullopt;
  d.reason = static_cast<DeadReason>(reason);
  return d;
}

std::string encode_scheduled(const NewMessage& m) {
  std::string out;
  out.reserve(1 + m.user.size() + m.id.size() + m.event.size() + m.data_json.size() +
              m.collapse_key.size() + m.trace_id.size() + 6 * 2 + 17);
  out.push_back(kRecordFormat);
  put_str(out, m.user);
  put_str(out, m.id);
  put_str(out, m.event);
  put_str(out, m.data_json);
  put_str(out, m.collapse_key);
  put_i64(out, m.ttl_ms);
  out.push_back(static_cast<char>(m.priority));
  put_str(out, m.trace_id);
  put_i64(out, m.accepted_at_ms);
  return out;
}

std::optional<NewMessage> decode_scheduled(std::string_view in) {
  RecordReader r(in);
  NewMessage m;
  m.user = r.str();
  m.id = r.str();
  m.event = r.str();
  m.data_json = r.str();
  m.collapse_key = r.str();
  m.ttl_ms = r.i64();
  const std::uint8_t priority = r.u8();
  m.trace_id = r.str();
  m.accepted_at_ms = r.i64();
  if (!r.done() || priority > static_cast<std::uint8_t>(Priority::low)) return std::nullopt;
  m.priority = static_cast<Priority>(priority);
  return m;
}

std::string encode_schedule_ref(const ScheduleRef& ref) {
  std::string out;
  out.push_back(kRecordFormat);
  put_i64(out, ref.deliver_at_ms);
  put_str(out, ref.user);
  put_str(out, ref.id);
  return out;
}

std::optional<ScheduleRef> decode_schedule_ref(std::string_view in) {
  RecordReader r(in);
  ScheduleRef ref;
  ref.deliver_at_ms = r.i64();
  ref.user = r.str();
  ref.id = r.str();
  if (!r.done()) return std::nullopt;
  return ref;
}

}  // namespace herald::store::layout
