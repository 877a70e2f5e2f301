#include "store/redis/slot_map.hpp"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <cstring>
#include <deque>
#include <memory>

#include "store/redis/redis_endpoints.hpp"

namespace herald::store {
namespace {

TEST(KeySlot, MatchesRedisClusterKeyslotVectors) {
  // Values from `redis-cli cluster keyslot` (Redis 7.0); 12739 is the
  // CRC16-XMODEM check value 0x31C3 mod 16384.
  EXPECT_EQ(key_slot("123456789"), 12739);
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("bar"), 5061);
  EXPECT_EQ(key_slot("hello"), 866);
  EXPECT_EQ(key_slot("{}"), 15257);
  EXPECT_EQ(key_slot("a{b"), 13340);
}

TEST(KeySlot, HashesOnlyTheFirstNonEmptyTag) {
  EXPECT_EQ(key_slot("{user1000}.following"), 3443);
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("{user1000}.followers"));
  EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));
  EXPECT_EQ(key_slot("foo{}{bar}"), 8363);      // empty first tag: the whole key
  EXPECT_EQ(key_slot("foo{{bar}}zap"), 4015);   // tag is "{bar"
  EXPECT_EQ(key_slot("herald:{u:alice}:meta"), key_slot("herald:{u:alice}:inbox"));
}

TEST(Redirect, ParsesMovedAndAsk) {
  const auto moved = parse_redirect("MOVED 3999 127.0.0.1:6381");
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->kind, Redirect::Kind::moved);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->node, "127.0.0.1:6381");
  const auto ask = parse_redirect("ASK 12182 10.0.0.2:7000");
  ASSERT_TRUE(ask);
  EXPECT_EQ(ask->kind, Redirect::Kind::ask);
  EXPECT_EQ(ask->node, "10.0.0.2:7000");
}

TEST(Redirect, RejectsOtherErrorsAndMalformedOnes) {
  EXPECT_FALSE(parse_redirect("NOSCRIPT No matching script"));
  EXPECT_FALSE(parse_redirect("MOVED"));
  EXPECT_FALSE(parse_redirect("MOVED 99999 127.0.0.1:1"));
  EXPECT_FALSE(parse_redirect("MOVED x 127.0.0.1:1"));
  EXPECT_FALSE(parse_redirect("ASK 1 nohostport"));
}

// A CLUSTER SLOTS reply built by hand: [[start, end, [host, port, id]], ...].
struct FakeReply {
  std::vector<std::unique_ptr<redisReply>> owned;
  std::deque<std::vector<redisReply*>> arrays;  // deque: elements never move
  std::deque<std::string> strings;

  redisReply* integer(long long v) {
    owned.push_back(std::make_unique<redisReply>());
    std::memset(owned.back().get(), 0, sizeof(redisReply));
    owned.back()->type = REDIS_REPLY_INTEGER;
    owned.back()->integer = v;
    return owned.back().get();
  }
  redisReply* string(const std::string& s) {
    owned.push_back(std::make_unique<redisReply>());
    std::memset(owned.back().get(), 0, sizeof(redisReply));
    strings.push_back(s);
    owned.back()->type = REDIS_REPLY_STRING;
    owned.back()->str = strings.back().data();
    owned.back()->len = strings.back().size();
    return owned.back().get();
  }
  redisReply* array(std::vector<redisReply*> elements) {
    arrays.push_back(std::move(elements));
    owned.push_back(std::make_unique<redisReply>());
    std::memset(owned.back().get(), 0, sizeof(redisReply));
    owned.back()->type = REDIS_REPLY_ARRAY;
    owned.back()->elements = arrays.back().size();
    owned.back()->element = arrays.back().data();
    return owned.back().get();
  }
  redisReply* range(long long start, long long end, const std::string& host, long long port) {
    return array({integer(start), integer(end), array({string(host), integer(port), string("id")})});
  }
};

TEST(SlotMap, MapsEverySlotOfAClusterSlotsReply) {
  FakeReply f;
  const redisReply* reply = f.array({f.range(0, 5460, "127.0.0.1", 7000), f.range(5461, 10922, "127.0.0.1", 7001),
                                     f.range(10923, 16383, "127.0.0.1", 7002)});
  SlotMap map;
  EXPECT_TRUE(map.empty());
  ASSERT_TRUE(map.update(*reply));
  EXPECT_EQ(map.node_for(0), "127.0.0.1:7000");
  EXPECT_EQ(map.node_for(5461), "127.0.0.1:7001");
  EXPECT_EQ(map.node_for(key_slot("123456789")), "127.0.0.1:7002");
  EXPECT_EQ(map.nodes(), (std::vector<NodeAddress>{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"}));
}

TEST(SlotMap, AMovedSlotGoesToItsNewNodeAndAnEmptiedNodeLeavesTheList) {
  FakeReply f;
  SlotMap map;
  ASSERT_TRUE(map.update(*f.array({f.range(0, 0, "h", 1), f.range(1, 16383, "h", 2)})));
  map.move(0, "h:2");
  EXPECT_EQ(map.node_for(0), "h:2");
  EXPECT_EQ(map.nodes(), (std::vector<NodeAddress>{"h:2"}));
  map.move(7, "h:3");
  EXPECT_EQ(map.node_for(7), "h:3");
}

TEST(SlotMap, AMalformedReplyLeavesTheMapUnchanged) {
  FakeReply f;
  SlotMap map;
  ASSERT_TRUE(map.update(*f.array({f.range(0, 16383, "h", 1)})));
  EXPECT_FALSE(map.update(*f.array({f.array({f.integer(0)})})));
  EXPECT_FALSE(map.update(*f.array({f.range(5, 3, "h", 2)})));
  EXPECT_FALSE(map.update(*f.array({f.range(0, 16384, "h", 2)})));
  EXPECT_FALSE(map.update(*f.integer(1)));
  EXPECT_EQ(map.node_for(100), "h:1");
  SlotMap fresh;
  EXPECT_EQ(fresh.node_for(100), std::nullopt);
}

TEST(RedisUrl, StandaloneAndClusterForms) {
  const auto one = parse_redis_url("redis://127.0.0.1:6380");
  EXPECT_FALSE(one.cluster);
  EXPECT_EQ(one.nodes, (std::vector<NodeAddress>{"127.0.0.1:6380"}));
  EXPECT_EQ(parse_redis_url("redis://cache").nodes.front(), "cache:6379");
  const auto many = parse_redis_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7001/");
  EXPECT_TRUE(many.cluster);
  EXPECT_EQ(many.nodes, (std::vector<NodeAddress>{"10.0.0.1:7000", "10.0.0.2:7001"}));
}

TEST(RedisUrl, RejectsWhatItCannotUse) {
  EXPECT_THROW(parse_redis_url("http://x:1"), std::invalid_argument);
  EXPECT_THROW(parse_redis_url("redis://"), std::invalid_argument);
  EXPECT_THROW(parse_redis_url("redis://h:0"), std::invalid_argument);
  EXPECT_THROW(parse_redis_url("redis://h:70000"), std::invalid_argument);
  EXPECT_THROW(parse_redis_url("redis://h:x"), std::invalid_argument);
  EXPECT_THROW(parse_redis_url("redis://a:1,b:2"), std::invalid_argument);
  EXPECT_THROW(parse_redis_url("redis+cluster://a:1,,b:2"), std::invalid_argument);
  EXPECT_THROW(parse_redis_url("redis://justuser@h:1"), std::invalid_argument);
  EXPECT_THROW(parse_redis_url("redis://:@h:1"), std::invalid_argument);
  EXPECT_THROW(parse_redis_url("redis://:bad%zz@h:1"), std::invalid_argument);
}

TEST(RedisUrl, CredentialsAsRedisCliTakesThem) {
  const auto plain = parse_redis_url("redis://:s3cret@127.0.0.1:6380");
  EXPECT_EQ(plain.credentials.username, "");
  EXPECT_EQ(plain.credentials.password, "s3cret");
  EXPECT_EQ(plain.nodes, (std::vector<NodeAddress>{"127.0.0.1:6380"}));
  const auto acl = parse_redis_url("redis+cluster://herald:p%40ss%3Aw%2Frd@a:1,b:2");
  EXPECT_EQ(acl.credentials.username, "herald");
  EXPECT_EQ(acl.credentials.password, "p@ss:w/rd");
  EXPECT_EQ(acl.nodes, (std::vector<NodeAddress>{"a:1", "b:2"}));
  EXPECT_TRUE(parse_redis_url("redis://h:1").credentials.password.empty());
}

TEST(RedisUrl, ShownWithoutItsPassword) {
  EXPECT_EQ(redact_redis_url("redis://:s3cret@h:1"), "redis://:***@h:1");
  EXPECT_EQ(redact_redis_url("redis+cluster://u:p%40w@a:1,b:2"), "redis+cluster://u:***@a:1,b:2");
  EXPECT_EQ(redact_redis_url("redis://h:1"), "redis://h:1");
  try {
    parse_redis_url("redis://:s3cret@h:99999");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace herald::store
