#include "store/rocksdb/inbox_layout.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace herald::store::layout {
namespace {

using namespace std::string_literals;

TEST(InboxLayout, NoUserPrefixIsAPrefixOfAnotherUsersPrefix) {
  const std::vector<std::string> users = {"a"s,      "a\0"s,    "a\0b"s, "ab"s, ""s,
                                          "\0"s,     "\0\0"s,   "a\x01"s, "a\0\x01"s};
  for (const auto& u : users) {
    for (const auto& v : users) {
      if (u == v) continue;
      EXPECT_FALSE(user_prefix(v).starts_with(user_prefix(u)))
          << "prefix of '" << u << "' starts '" << v << "'";
    }
  }
}

TEST(InboxLayout, UserPrefixEndBoundsEveryKeyOfThatUserOnly) {
  const std::string u = "a\0"s;
  const std::string begin = user_prefix(u);
  const std::string end = user_prefix_end(u);
  for (const std::string& suffix : {""s, "\xff\xff"s, be64(~std::uint64_t{0})}) {
    const std::string k = begin + suffix;
    EXPECT_TRUE(k >= begin && k < end);
  }
  const std::string other = user_prefix("a\0b"s) + "x";
  EXPECT_FALSE(other >= begin && other < end);
}

TEST(InboxLayout, MessageKeysOfOneUserSortBySeq) {
  EXPECT_LT(message_key("u", 9), message_key("u", 10));
  EXPECT_LT(message_key("u", 255), message_key("u", 256));
  EXPECT_LT(message_key("u", 1), message_key("u", std::uint64_t{1} << 60));
}

TEST(InboxLayout, ExpiryKeysSortByTimeIncludingNegativeTimes) {
  std::vector<std::string> keys = {expiry_key(5, "b", 1), expiry_key(-3, "a", 2),
                                   expiry_key(1000, "a", 1), expiry_key(0, "z", 7)};
  std::sort(keys.begin(), keys.end());
  std::vector<std::int64_t> times;
  for (const auto& k : keys) times.push_back(parse_expiry_key(k)->expires_at_ms);
  EXPECT_EQ(times, (std::vector<std::int64_t>{-3, 0, 5, 1000}));
  EXPECT_LT(expiry_key(5, "zzz", 9), expiry_time_key(6));
}

TEST(InboxLayout, ExpiryKeyRoundTripsUserWithNulAndSeq) {
  const auto e = parse_expiry_key(expiry_key(1764000000000, "u\0x"s, 42));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->expires_at_ms, 1764000000000);
  EXPECT_EQ(e->user, "u\0x"s);
  EXPECT_EQ(e->seq, 42u);
  EXPECT_FALSE(parse_expiry_key("short"));
}

TEST(InboxLayout, MessageRecordRoundTrips) {
  StoredMessage m;
  m.id = "ord-77";
  m.event = "order.status";
  m.data_json = std::string(300, 'x') + "\0{}"s;
  m.collapse_key = "k";
  m.trace_id = "abc";
  m.ts_ms = 1764000000000;
  m.expires_at_ms = -1;
  const auto back = decode_message(encode_message(m), 7);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->seq, 7u);
  EXPECT_EQ(back->id, m.id);
  EXPECT_EQ(back->event, m.event);
  EXPECT_EQ(back->data_json, m.data_json);
  EXPECT_EQ(back->collapse_key, m.collapse_key);
  EXPECT_EQ(back->trace_id, m.trace_id);
  EXPECT_EQ(back->ts_ms, m.ts_ms);
  EXPECT_EQ(back->expires_at_ms, m.expires_at_ms);
}

TEST(InboxLayout, TruncatedOrUnknownRecordsAreRejected) {
  StoredMessage m;
  m.id = "x";
  const std::string bytes = encode_message(m);
  for (std::size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(decode_message(bytes.substr(0, n), 1));
  EXPECT_FALSE(decode_message(bytes + "!", 1));
  std::string other_format = bytes;
  other_format[0] = 2;
  EXPECT_FALSE(decode_message(other_format, 1));
}

TEST(InboxLayout, MetaDedupAndDeadLetterRecordsRoundTrip) {
  const UserMeta meta{"0123abcd", 10, 4, 3, 7};
  EXPECT_EQ(decode_meta(encode_meta(meta)), meta);

  const auto d = decode_dedup(encode_dedup({99, 1764000000123}));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->seq, 99u);
  EXPECT_EQ(d->accepted_ms, 1764000000123);

  const DeadLetter dl{0, "u1", 5, "id", "ev", "{\"a\":1}", DeadReason::trimmed, 11, 22};
  const auto back = decode_dead_letter(encode_dead_letter(dl), 3);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id, 3u);
  EXPECT_EQ(back->user, "u1");
  EXPECT_EQ(back->seq, 5u);
  EXPECT_EQ(back->message_id, "id");
  EXPECT_EQ(back->event, "ev");
  EXPECT_EQ(back->data_json, "{\"a\":1}");
  EXPECT_EQ(back->reason, DeadReason::trimmed);
  EXPECT_EQ(back->ts_ms, 11);
  EXPECT_EQ(back->dead_at_ms, 22);
}

TEST(InboxLayout, ScheduleKeysSortByTimeThenScheduleIdAndRoundTrip) {
  std::vector<std::string> keys = {schedule_key(5, 1), schedule_key(-3, 9), schedule_key(5, 0),
                                   schedule_key(1000, 2), schedule_key(0, 300)};
  std::sort(keys.begin(), keys.end());
  std::vector<std::pair<std::int64_t, std::uint64_t>> parsed;
  for (const auto& k : keys) {
    const auto p = parse_schedule_key(k);
    ASSERT_TRUE(p);
    parsed.emplace_back(p->deliver_at_ms, p->schedule_id);
  }
  EXPECT_EQ(parsed, (std::vector<std::pair<std::int64_t, std::uint64_t>>{
                        {-3, 9}, {0, 300}, {5, 0}, {5, 1}, {1000, 2}}));
  EXPECT_LT(schedule_key(5, ~std::uint64_t{0}), schedule_key(6, 0));
  EXPECT_FALSE(parse_schedule_key("short"));
}

TEST(InboxLayout, ScheduledRecordAndScheduleRefRoundTrip) {
  NewMessage m;
  m.user = "u\0x"s;
  m.id = "ord-77";
  m.event = "order.status";
  m.data_json = "[1,null]";
  m.collapse_key = "k";
  m.ttl_ms = 60000;
  m.priority = Priority::high;
  m.trace_id = "abc";
  m.accepted_at_ms = 1764000000000;
  const std::string bytes = encode_scheduled(m);
  const auto back = decode_scheduled(bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->user, m.user);
  EXPECT_EQ(back->id, m.id);
  EXPECT_EQ(back->event, m.event);
  EXPECT_EQ(back->data_json, m.data_json);
  EXPECT_EQ(back->collapse_key, m.collapse_key);
  EXPECT_EQ(back->ttl_ms, m.ttl_ms);
  EXPECT_EQ(back->priority, Priority::high);
  EXPECT_EQ(back->trace_id, m.trace_id);
  EXPECT_EQ(back->accepted_at_ms, m.accepted_at_ms);
  for (std::size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(decode_scheduled(bytes.substr(0, n)));

  const ScheduleRef ref{-5, "u\0x"s, "ord-77"};
  EXPECT_EQ(decode_schedule_ref(encode_schedule_ref(ref)), ref);
  EXPECT_FALSE(decode_schedule_ref(encode_schedule_ref(ref) + "!"));
}

TEST(InboxLayout, UserPrefixSizeCoversTheEscapedUserAndItsTerminator) {
  EXPECT_EQ(layout::user_prefix_size(layout::user_key("alice", "ord-1")), 7u);
  const std::string nul_user("a\0b", 3);
  EXPECT_EQ(layout::user_prefix_size(layout::user_key(nul_user, "x")), layout::user_prefix(nul_user).size());
  EXPECT_EQ(layout::user_prefix_size(layout::message_key("bob", 42)), 5u);
  EXPECT_EQ(layout::user_prefix_size("no terminator"), 0u);
  EXPECT_EQ(layout::user_prefix_size(std::string("bad\0\x02", 5)), 0u);
}

TEST(InboxLayout, AnExpiryValueNamesTheLastSeqOfItsRun) {
  EXPECT_EQ(layout::expiry_run_value(7, 7), "");
  EXPECT_EQ(layout::expiry_run_last("", 7), 7u);
  EXPECT_EQ(layout::expiry_run_last(layout::expiry_run_value(7, 12), 7), 12u);
  EXPECT_EQ(layout::expiry_run_last(layout::be64(3), 7), 7u);  // never before the first
  EXPECT_EQ(layout::expiry_run_last("junk", 7), 7u);
}

}  // namespace
}  // namespace herald::store::layout
