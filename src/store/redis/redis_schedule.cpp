// The ScheduleStore half of RedisInboxStore: delayed messages in one slot
// ({sched}), written by the schedule scripts (redis_scripts.hpp).
#include <hiredis/hiredis.h>

#include <boost/json.hpp>
#include <charconv>
#include <cstdio>

#include "store/redis/redis_inbox_store.hpp"
#include "store/redis/redis_scripts.hpp"

namespace herald::store {

namespace {

std::string message_json(const NewMessage& m) {
  boost::json::object o;
  o["user"] = m.user;
  o["id"] = m.id;
  o["event"] = m.event;
  o["data"] = m.data_json;
  o["collapse_key"] = m.collapse_key;
  o["ttl_ms"] = m.ttl_ms;
  o["priority"] = static_cast<int>(m.priority);
  o["trace_id"] = m.trace_id;
  o["accepted_at_ms"] = m.accepted_at_ms;
  return boost::json::serialize(o);
}

std::optional<NewMessage> parse_message(std::string_view json) {
  boost::json::parse_options opts;
  opts.allow_invalid_utf8 = true;  // user names and ids are kept byte for byte
  boost::system::error_code ec;
  const auto v = boost::json::parse(json, ec, {}, opts);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  const auto str = [&](const char* k) {
    const auto* f = o.if_contains(k);
    return f != nullptr && f->is_string() ? std::string(f->as_string()) : std::string();
  };
  const auto num = [&](const char* k) -> std::int64_t {
    const auto* f = o.if_contains(k);
    return f != nullptr && f->is_int64() ? f->as_int64() : 0;
  };
  NewMessage m;
  m.user = str("user");
  m.id = str("id");
  m.event = str("event");
  m.data_json = str("data");
  m.collapse_key = str("collapse_key");
  m.ttl_ms = num("ttl_ms");
  const auto p = num("priority");
  m.priority = p == 0 ? Priority::high : p == 2 ? Priority::low : Priority::normal;
  m.trace_id = str("trace_id");
  m.accepted_at_ms = num("accepted_at_ms");
  return m;
}

// (user, id), unambiguous for any bytes in either.
std::string dedup_key(const NewMessage& m) { return RedisKeys::schedule_member(m.user, m.id); }

std::string padded(std::uint64_t id) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(id));
  return buf;
}

std::vector<std::string> schedule_keys(const RedisKeys& keys) {
  const auto k = keys.schedule();
  return {k.begin(), k.end()};
}

}  // namespace

ScheduleResult RedisInboxStore::schedule(const NewMessage& m, std::int64_t deliver_at_ms) {
  // Appended within the dedup window (PROTOCOL.md 10)? The inbox's dedup
  // hash lives in the user's slot, the schedule in its own: two steps.
  const auto prior = link_.execute_one(
      RedisCommand::keyed({"HGET", keys_.user(m.user, UserKey::dedup), m.id}));
  if (prior == nullptr || prior->type == REDIS_REPLY_ERROR) return ScheduleResult::unavailable;
  if (const auto v = reply_string(prior.get())) {
    const auto sep = v->find(':');
    std::int64_t accepted = 0;
    std::from_chars(v->data() + sep + 1, v->data() + v->size(), accepted);
    if (sep != std::string::npos && accepted + policy_.dedup_window_ms >= m.accepted_at_ms) {
      return ScheduleResult::duplicate;
    }
  }
  const auto r = link_.execute_one(RedisCommand::eval(
      scripts::schedule_add(), schedule_keys(keys_),
      {dedup_key(m), message_json(m), std::to_string(deliver_at_ms),
       std::to_string(options_.max_scheduled)}));
  const auto code = reply_int(reply_at(r.get(), 0));
  if (!reply_ok(r.get()) || !code) return ScheduleResult::unavailable;
  if (*code == 0 && scheduled_hint_.load() == 0) scheduled_hint_.store(1);
  return *code == 0 ? ScheduleResult::scheduled : *code == 1 ? ScheduleResult::duplicate : ScheduleResult::full;
}

std::vector<ScheduledMessage> RedisInboxStore::due(std::int64_t now_ms, std::size_t limit) {
  std::vector<ScheduledMessage> out;
  if (limit == 0) return out;
  const auto r = link_.execute_one(RedisCommand::eval(scripts::schedule_due(), schedule_keys(keys_),
                                                      {std::to_string(now_ms), std::to_string(limit)}));
  // First how many are held (every node's), then the due ones.
  if (const auto held = reply_int(reply_at(r.get(), 0))) scheduled_hint_.store(*held);
  for (std::size_t i = 1; i + 2 < reply_size(r.get()); i += 3) {
    const auto id = reply_int(reply_at(r.get(), i));
    const auto at = reply_string(reply_at(r.get(), i + 1));
    const auto json = reply_string(reply_at(r.get(), i + 2));
    if (!id || !at || !json) continue;
    auto m = parse_message(*json);
    if (!m) continue;
    std::int64_t deliver_at = 0;
    std::from_chars(at->data(), at->data() + at->size(), deliver_at);
    out.push_back(ScheduledMessage{std::move(*m), deliver_at, static_cast<std::uint64_t>(*id)});
  }
  return out;
}

void RedisInboxStore::remove(std::span<const std::uint64_t> schedule_ids) {
  if (schedule_ids.empty()) return;
  std::vector<std::string> argv;
  for (const auto id : schedule_ids) argv.push_back(padded(id));
  link_.execute_one(RedisCommand::eval(scripts::schedule_remove(), schedule_keys(keys_), std::move(argv)));
}

std::size_t RedisInboxStore::scheduled_count() {
  const auto r = link_.execute_one(RedisCommand::keyed({"HLEN", keys_.schedule()[1]}));
  return static_cast<std::size_t>(reply_int(r.get()).value_or(0));
}

}  // namespace herald::store
