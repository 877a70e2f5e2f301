#include "store/redis/redis_inbox_store.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>

#include "core/ids.hpp"
#include "core/log.hpp"
#include "store/redis/redis_scripts.hpp"

namespace herald::store {

namespace {

std::string n2s(std::uint64_t v) { return std::to_string(v); }
std::string n2s(std::int64_t v) { return std::to_string(v); }

std::int64_t to_i64(std::string_view s) {
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// A stream entry [id "<seq>-0", [field, value, ...]] as a message.
MessagePtr parse_entry(const redisReply* entry) {
  const auto id = reply_string(reply_at(entry, 0));
  const redisReply* fields = reply_at(entry, 1);
  if (!id || !reply_is_array(fields)) return nullptr;
  auto m = std::make_shared<StoredMessage>();
  m->seq = static_cast<std::uint64_t>(to_i64(*id));  // stops at the '-'
  for (std::size_t i = 0; i + 1 < reply_size(fields); i += 2) {
    const auto name = reply_string(reply_at(fields, i)).value_or("");
    std::string value = reply_string(reply_at(fields, i + 1)).value_or("");
    if (name == "id") m->id = std::move(value);
    else if (name == "ev") m->event = std::move(value);
    else if (name == "d") m->data_json = std::move(value);
    else if (name == "ck") m->collapse_key = std::move(value);
    else if (name == "tr") m->trace_id = std::move(value);
    else if (name == "ts") m->ts_ms = to_i64(value);
    else if (name == "ex") m->expires_at_ms = to_i64(value);
  }
  return m;
}

std::string field(const boost::json::object& o, const char* name) {
  const auto* v = o.if_contains(name);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

// A dead letter as the scripts encode it (cjson, numbers as strings).
std::optional<DeadLetter> parse_dead_letter(std::uint64_t id, std::string_view json) {
  boost::json::parse_options opts;
  opts.allow_invalid_utf8 = true;  // user names and data are passed through byte for byte
  boost::system::error_code ec;
  const auto v = boost::json::parse(json, ec, {}, opts);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  DeadLetter d;
  d.id = id;
  d.user = field(o, "u");
  d.seq = static_cast<std::uint64_t>(to_i64(field(o, "s")));
  d.message_id = field(o, "i");
  d.event = field(o, "e");
  d.data_json = field(o, "d");
  d.reason = field(o, "r") == "trimmed" ? DeadReason::trimmed : DeadReason::expired;
  d.ts_ms = to_i64(field(o, "t"));
  d.dead_at_ms = to_i64(field(o, "a"));
  return d;
}

}  // namespace

RedisInboxStore::RedisInboxStore(RedisEndpoints endpoints, StorePolicy policy, RedisStoreOptions options)
    : policy_(policy),
      options_(std::move(options)),
      keys_(options_.key_prefix),
      link_(std::move(endpoints), options_.link) {}

RedisInboxStore::~RedisInboxStore() = default;

RedisCommand RedisInboxStore::user_script(const RedisScript& script, std::string_view user,
                                          std::vector<std::string> argv) const {
  auto keys = keys_.user_all(user);
  return RedisCommand::eval(script, std::vector<std::string>(keys.begin(), keys.end()), std::move(argv));
}

RedisCommand RedisInboxStore::index_lower(std::string_view user, std::int64_t at_ms) const {
  return RedisCommand::keyed({"ZADD", keys_.expiry_bucket(keys_.bucket_of(user)), "LT", n2s(at_ms),
                              std::string(user)});
}

std::vector<AppendOutcome> RedisInboxStore::append(std::span<const NewMessage> batch, std::int64_t now_ms) {
  const std::vector<bool> scheduled = held_by_schedule(batch);
  std::vector<RedisCommand> commands;
  commands.reserve(batch.size());
  const std::string epoch_candidate = random_hex(8);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto& m = batch[i];
    if (scheduled[i]) continue;
    const std::int64_t expires_at = m.accepted_at_ms + (m.ttl_ms > 0 ? m.ttl_ms : policy_.retention_ttl_ms);
    commands.push_back(user_script(
        scripts::append(), m.user,
        {m.user, n2s(now_ms), n2s(policy_.dedup_window_ms), n2s(policy_.retention_max_messages),
         epoch_candidate, m.id, m.event, m.data_json, m.collapse_key, m.trace_id,
         n2s(m.accepted_at_ms), n2s(expires_at)}));
  }
  const auto replies = commands.empty() ? decltype(link_.execute(commands)){} : link_.execute(commands);

  std::vector<AppendOutcome> out;
  out.reserve(batch.size());
  std::vector<RedisCommand> index;
  DeadBatch dead;
  std::size_t next_reply = 0;
  std::size_t refused = 0;  // messages Redis answered with an error (OOM, READONLY...)
  std::string first_error;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (scheduled[i]) {
      out.emplace_back(AppendResult{0, batch[i].id, true, true});
      continue;
    }
    const redisReply* r = replies[next_reply++].get();
    const auto seq = reply_int(reply_at(r, 0));
    if (!reply_ok(r) || !seq) {
      if (r != nullptr && refused++ == 0) first_error = reply_error(r);
      out.emplace_back(errc::store_unavailable);
      continue;
    }
    out.emplace_back(AppendResult{static_cast<std::uint64_t>(*seq), batch[i].id,
                                  reply_int(reply_at(r, 1)).value_or(0) != 0});
    if (const auto at = reply_int(reply_at(r, 2)).value_or(0); at > 0) {
      index.push_back(index_lower(batch[i].user, at));
    }
    if (reply_size(r) > 3) {
      if (dead.empty() || dead.back().first != batch[i].user) dead.emplace_back(batch[i].user, std::vector<std::string>{});
      for (std::size_t j = 3; j < reply_size(r); ++j) {
        dead.back().second.push_back(reply_string(reply_at(r, j)).value_or(""));
      }
    }
  }
  if (refused > 0) {
    // One line per batch, and at most one every 10 s: each refused message
    // is counted in herald_redis_errors_total and answered 503 already.
    static log::Throttle throttle(std::chrono::seconds(10));
    if (const auto held = throttle.admit()) {
      log::warn("redis append failed",
                {{"error", first_error}, {"messages", refused}, {"suppressed", *held}});
    }
  }
  if (!index.empty()) link_.execute(index);
  move_dead_letters(dead);
  return out;
}

// PROTOCOL.md 10: dedup covers scheduled messages. The schedule has a slot
// of its own, so this is a step before the appends: one round trip, taken
// only by batches with ids their publishers chose, and only while anything
// is scheduled (as due() last saw, every 20 ms, or this node scheduled).
std::vector<bool> RedisInboxStore::held_by_schedule(std::span<const NewMessage> batch) {
  std::vector<bool> held(batch.size(), false);
  std::int64_t hint = scheduled_hint_.load();
  if (hint < 0) {  // not known yet: ask once
    hint = static_cast<std::int64_t>(scheduled_count());
    scheduled_hint_.store(hint);
  }
  if (hint == 0) return held;
  std::vector<RedisCommand> checks;
  std::vector<std::size_t> which;
  const std::string taken = keys_.schedule()[3];
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].id_generated || batch[i].from_schedule) continue;
    checks.push_back(RedisCommand::keyed({"HEXISTS", taken, RedisKeys::schedule_member(batch[i].user, batch[i].id)}));
    which.push_back(i);
  }
  if (checks.empty()) return held;
  const auto replies = link_.execute(checks);
  for (std::size_t k = 0; k < which.size() && k < replies.size(); ++k) {
    held[which[k]] = reply_int(replies[k].get()).value_or(0) == 1;
  }
  return held;
}

void RedisInboxStore::move_dead_letters(const DeadBatch& batch) {
  if (batch.empty()) return;
  std::vector<std::string> argv = {n2s(static_cast<std::uint64_t>(options_.max_dead_letters))};
  for (const auto& [user, letters] : batch) argv.insert(argv.end(), letters.begin(), letters.end());
  const auto added = link_.execute_one(RedisCommand::eval(
      scripts::add_dead_letters(), {keys_.dead_log(), keys_.dead_next(), keys_.dead_index()}, std::move(argv)));
  if (!reply_ok(added.get())) {
    // They stay in the users' dead_out lists (docs/cluster.md "Failure modes").
    static log::Throttle throttle(std::chrono::seconds(10));
    if (const auto held = throttle.admit()) {
      log::warn("redis dead-letter log write failed",
                {{"error", reply_error(added.get())}, {"suppressed", *held}});
    }
    return;
  }
  std::vector<RedisCommand> drop;
  for (const auto& [user, letters] : batch) {
    for (const auto& d : letters) {
      drop.push_back(RedisCommand::keyed({"LREM", keys_.user(user, UserKey::dead_out), "1", d}));
    }
  }
  link_.execute(drop);
}

std::vector<MessagePtr> RedisInboxStore::read_after(std::string_view user, std::uint64_t after_seq,
                                                    std::size_t limit, std::int64_t now_ms) {
  // Expired messages not yet removed are skipped, so a page may need more
  // than one range read.
  constexpr std::size_t kChunk = 1000;
  std::vector<MessagePtr> out;
  const std::string inbox = keys_.user(user, UserKey::inbox);
  std::uint64_t from = after_seq;
  while (out.size() < limit) {
    const std::size_t want = std::min(kChunk, limit - out.size());
    const auto r = link_.execute_one(
        RedisCommand::keyed({"XRANGE", inbox, "(" + n2s(from) + "-0", "+", "COUNT", n2s(std::uint64_t{want})}));
    if (!reply_is_array(r.get())) break;
    for (std::size_t i = 0; i < reply_size(r.get()); ++i) {
      auto m = parse_entry(reply_at(r.get(), i));
      if (!m) continue;
      from = m->seq;
      if (m->expires_at_ms > now_ms) out.push_back(std::move(m));
    }
    if (reply_size(r.get()) < want) break;
  }
  return out;
}

MessagePtr RedisInboxStore::get(std::string_view user, std::uint64_t seq) {
  if (seq == 0) return nullptr;
  const std::string id = n2s(seq) + "-0";
  const auto r = link_.execute_one(RedisCommand::keyed({"XRANGE", keys_.user(user, UserKey::inbox), id, id}));
  if (reply_size(r.get()) == 0) return nullptr;
  return parse_entry(reply_at(r.get(), 0));
}

InboxState RedisInboxStore::state(std::string_view user) {
  const auto r = link_.execute_one(user_script(scripts::state(), user, {random_hex(8)}));
  InboxState s;
  if (!reply_ok(r.get())) return s;
  s.epoch = reply_string(reply_at(r.get(), 0)).value_or("");
  s.head_seq = static_cast<std::uint64_t>(reply_int(reply_at(r.get(), 1)).value_or(0));
  s.max_lost_seq = static_cast<std::uint64_t>(reply_int(reply_at(r.get(), 2)).value_or(0));
  return s;
}

std::vector<std::uint64_t> RedisInboxStore::head_seqs(std::span<const std::string> users) {
  std::vector<RedisCommand> commands;
  commands.reserve(users.size());
  for (const auto& u : users) commands.push_back(RedisCommand::keyed({"HGET", keys_.user(u, UserKey::meta), "head"}));
  const auto replies = link_.execute(commands);
  std::vector<std::uint64_t> out;
  out.reserve(users.size());
  for (const auto& r : replies) out.push_back(static_cast<std::uint64_t>(reply_int(r.get()).value_or(0)));
  return out;
}

std::optional<std::uint64_t> RedisInboxStore::device_value(UserKey hash, std::string_view user,
                                                           std::string_view device) {
  const auto r = link_.execute_one(RedisCommand::keyed({"HGET", keys_.user(user, hash), std::string(device)}));
  const auto v = reply_int(r.get());
  if (!v) return std::nullopt;
  return static_cast<std::uint64_t>(*v);
}

std::optional<std::uint64_t> RedisInboxStore::cursor(std::string_view user, std::string_view device) {
  return device_value(UserKey::cursors, user, device);
}

std::optional<std::uint64_t> RedisInboxStore::lost_mark(std::string_view user, std::string_view device) {
  return device_value(UserKey::lost_marks, user, device);
}

std::vector<DeviceCursor> RedisInboxStore::cursors(std::string_view user) {
  const auto r = link_.execute_one(RedisCommand::keyed({"HGETALL", keys_.user(user, UserKey::cursors)}));
  std::vector<DeviceCursor> out;
  for (std::size_t i = 0; i + 1 < reply_size(r.get()); i += 2) {
    out.push_back({reply_string(reply_at(r.get(), i)).value_or(""),
                   static_cast<std::uint64_t>(reply_int(reply_at(r.get(), i + 1)).value_or(0))});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.device < b.device; });
  return out;
}

void RedisInboxStore::register_device(std::string_view user, std::string_view device,
                                      std::uint64_t initial_cursor) {
  link_.execute_one(user_script(scripts::register_device(), user,
                                {random_hex(8), std::string(device), n2s(initial_cursor)}));
}

void RedisInboxStore::commit_cursors(std::span<const CursorUpdate> updates) {
  // One script per user, all users in one pipeline.
  std::vector<std::pair<std::string, std::vector<std::string>>> by_user;
  for (const auto& u : updates) {
    auto it = std::find_if(by_user.begin(), by_user.end(), [&](const auto& p) { return p.first == u.user; });
    if (it == by_user.end()) it = by_user.insert(by_user.end(), {u.user, {random_hex(8)}});
    it->second.push_back(u.device);
    it->second.push_back(n2s(u.cursor));
  }
  std::vector<RedisCommand> commands;
  for (auto& [user, argv] : by_user) commands.push_back(user_script(scripts::raise_cursors(), user, std::move(argv)));
  link_.execute(commands);
}

void RedisInboxStore::commit_ack_marks(std::span<const AckMark> marks) {
  std::vector<std::pair<std::string, std::vector<std::string>>> by_user;
  for (const auto& m : marks) {
    auto it = std::find_if(by_user.begin(), by_user.end(), [&](const auto& p) { return p.first == m.user; });
    if (it == by_user.end()) it = by_user.insert(by_user.end(), {m.user, {}});
    it->second.push_back(m.device);
    it->second.push_back(n2s(m.seq));
  }
  std::vector<RedisCommand> commands;
  for (auto& [user, argv] : by_user) commands.push_back(user_script(scripts::mark_acked(), user, std::move(argv)));
  link_.execute(commands);
}

std::size_t RedisInboxStore::expire(std::int64_t now_ms, std::size_t budget) {
  if (budget == 0) return 0;
  // Which users have something due: every bucket in one pipeline.
  std::vector<RedisCommand> lookups;
  for (std::size_t b = 0; b < kExpiryBuckets; ++b) {
    lookups.push_back(RedisCommand::keyed({"ZRANGEBYSCORE", keys_.expiry_bucket(b), "-inf", n2s(now_ms),
                                           "LIMIT", "0", n2s(std::uint64_t{budget})}));
  }
  const auto found = link_.execute(lookups);
  std::size_t removed = 0;
  for (std::size_t b = 0; b < kExpiryBuckets && removed < budget; ++b) {
    for (std::size_t i = 0; i < reply_size(found[b].get()) && removed < budget; ++i) {
      const auto user = reply_string(reply_at(found[b].get(), i));
      if (user) removed += expire_user(*user, b, now_ms, budget - removed);
    }
  }
  return removed;
}

std::size_t RedisInboxStore::expire_user(const std::string& user, std::size_t bucket, std::int64_t now_ms,
                                         std::size_t limit) {
  const auto r = link_.execute_one(
      user_script(scripts::expire(), user, {user, n2s(now_ms), n2s(std::uint64_t{limit})}));
  const auto removed = reply_int(reply_at(r.get(), 0));
  const auto next_at = reply_int(reply_at(r.get(), 1));
  if (!reply_ok(r.get()) || !removed || !next_at) return 0;
  DeadBatch dead;
  if (reply_size(r.get()) > 2) {
    dead.emplace_back(user, std::vector<std::string>{});
    for (std::size_t j = 2; j < reply_size(r.get()); ++j) {
      dead.back().second.push_back(reply_string(reply_at(r.get(), j)).value_or(""));
    }
  }
  move_dead_letters(dead);

  // Set the user's score to what the script saw, then read the earliest
  // expiry again and lower the score to it: an append that ran between the
  // script and the first write is covered by that second look, one after it
  // by its own ZADD LT (docs/cluster.md "Expiry index").
  const std::string key = keys_.expiry_bucket(bucket);
  std::vector<RedisCommand> fix;
  fix.push_back(*next_at < 0 ? RedisCommand::keyed({"ZREM", key, user})
                             : RedisCommand::keyed({"ZADD", key, n2s(*next_at), user}));
  fix.push_back(RedisCommand::keyed({"ZRANGE", keys_.user(user, UserKey::expiry), "0", "0", "WITHSCORES"}));
  const auto fixed = link_.execute(fix);
  if (const auto earliest = reply_string(reply_at(fixed[1].get(), 1))) {
    link_.execute_one(index_lower(user, to_i64(*earliest)));
  }
  return static_cast<std::size_t>(*removed);
}

BacklogSlice RedisInboxStore::scan_backlog(std::string_view position, std::size_t max_users) {
  // Every user holding a message is in the expiry index, so the census walks
  // its buckets by rank ("bucket:rank"); a user moving between buckets during
  // a pass may be counted twice or missed once: it is an estimate. Per slice
  // one ZRANGE and one pipeline (head, retained count, cursors) per bucket.
  BacklogSlice out;
  std::size_t bucket = 0;
  std::uint64_t rank = 0;
  if (const auto colon = position.find(':'); colon != std::string_view::npos) {
    bucket = static_cast<std::size_t>(to_i64(position.substr(0, colon)));
    rank = static_cast<std::uint64_t>(to_i64(position.substr(colon + 1)));
  }
  const std::size_t want = std::max<std::size_t>(1, max_users);
  while (bucket < kExpiryBuckets && out.users < want) {
    const std::uint64_t last = rank + (want - out.users) - 1;
    const auto r = link_.execute_one(RedisCommand::keyed({"ZRANGE", keys_.expiry_bucket(bucket), n2s(rank), n2s(last)}));
    std::vector<std::string> users;
    for (std::size_t i = 0; i < reply_size(r.get()); ++i) {
      if (auto u = reply_string(reply_at(r.get(), i))) users.push_back(std::move(*u));
    }
    if (users.empty()) {
      ++bucket;
      rank = 0;
      continue;
    }
    rank += users.size();
    std::vector<RedisCommand> reads;
    for (const auto& u : users) {
      reads.push_back(RedisCommand::keyed({"HGET", keys_.user(u, UserKey::meta), "head"}));
      reads.push_back(RedisCommand::keyed({"XLEN", keys_.user(u, UserKey::inbox)}));
      reads.push_back(RedisCommand::keyed({"HVALS", keys_.user(u, UserKey::cursors)}));
    }
    const auto replies = link_.execute(reads);
    for (std::size_t i = 0; i < users.size() && 3 * i + 2 < replies.size(); ++i) {
      const auto head = reply_string(replies[3 * i].get());
      const auto count = reply_int(replies[3 * i + 1].get());
      std::optional<std::uint64_t> min_cursor;
      const redisReply* cursors = replies[3 * i + 2].get();
      for (std::size_t c = 0; c < reply_size(cursors); ++c) {
        if (const auto v = reply_string(reply_at(cursors, c))) {
          const auto cur = static_cast<std::uint64_t>(to_i64(*v));
          min_cursor = min_cursor ? std::min(*min_cursor, cur) : cur;
        }
      }
      const std::uint64_t b = inbox_backlog(static_cast<std::uint64_t>(count.value_or(0)),
                                            head ? static_cast<std::uint64_t>(to_i64(*head)) : 0, min_cursor);
      out.messages += b;
      if (b > 0) ++out.users_behind;
    }
    out.users += users.size();
  }
  if (bucket < kExpiryBuckets) out.position = n2s(std::uint64_t{bucket}) + ":" + n2s(rank);
  return out;
}

std::vector<DeadLetter> RedisInboxStore::dead_letters(std::uint64_t after_id, std::size_t limit) {
  std::vector<DeadLetter> out;
  if (limit == 0) return out;
  const auto r = link_.execute_one(RedisCommand::keyed(
      {"XRANGE", keys_.dead_log(), after_id == 0 ? std::string("-") : "(" + n2s(after_id) + "-0", "+",
       "COUNT", n2s(std::uint64_t{limit})}));
  for (std::size_t i = 0; i < reply_size(r.get()); ++i) {
    const redisReply* entry = reply_at(r.get(), i);
    const auto id = reply_string(reply_at(entry, 0));
    const auto json = reply_string(reply_at(reply_at(entry, 1), 1));
    if (!id || !json) continue;
    if (auto d = parse_dead_letter(static_cast<std::uint64_t>(to_i64(*id)), *json)) out.push_back(std::move(*d));
  }
  return out;
}

std::optional<DeadLetter> RedisInboxStore::dead_letter(std::string_view user, std::uint64_t seq) {
  const auto score = link_.execute_one(
      RedisCommand::keyed({"ZSCORE", keys_.dead_index(), std::string(user) + "\n" + n2s(seq)}));
  const auto id_text = reply_string(score.get());
  if (!id_text) return std::nullopt;
  const std::string sid = n2s(static_cast<std::uint64_t>(to_i64(*id_text))) + "-0";
  const auto r = link_.execute_one(RedisCommand::keyed({"XRANGE", keys_.dead_log(), sid, sid}));
  const redisReply* entry = reply_at(r.get(), 0);
  const auto json = reply_string(reply_at(reply_at(entry, 1), 1));
  if (!json) return std::nullopt;
  auto d = parse_dead_letter(static_cast<std::uint64_t>(to_i64(*id_text)), *json);
  if (!d || d->user != user || d->seq != seq) return std::nullopt;
  return d;
}

std::uint64_t RedisInboxStore::dead_letter_count() {
  const auto r = link_.execute_one(RedisCommand::keyed({"GET", keys_.dead_next()}));
  return static_cast<std::uint64_t>(reply_int(r.get()).value_or(0));
}

std::optional<std::string> RedisInboxStore::persistence() {
  RedisCommand config_get;
  config_get.args = {"CONFIG", "GET", "append*"};
  const auto r = link_.execute_one(config_get);
  std::string appendonly, appendfsync;
  for (std::size_t i = 0; i + 1 < reply_size(r.get()); i += 2) {
    const auto name = reply_string(reply_at(r.get(), i)).value_or("");
    if (name == "appendonly") appendonly = reply_string(reply_at(r.get(), i + 1)).value_or("");
    if (name == "appendfsync") appendfsync = reply_string(reply_at(r.get(), i + 1)).value_or("");
  }
  if (appendonly.empty()) return std::nullopt;
  return "appendonly=" + appendonly + " appendfsync=" + appendfsync;
}

bool RedisInboxStore::healthy() {
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now().time_since_epoch())
                       .count();
  const auto errors = link_.stats().errors.load(std::memory_order_relaxed);
  if (now < healthy_until_ms_.load(std::memory_order_relaxed) &&
      errors == errors_at_ping_.load(std::memory_order_relaxed)) {
    return true;
  }
  const bool ok = link_.ping_all();
  errors_at_ping_.store(errors, std::memory_order_relaxed);
  healthy_until_ms_.store(ok ? now + kHealthTtlMs : 0, std::memory_order_relaxed);
  return ok;
}

}  // namespace herald::store
