// What only the redis store promises, on real redis-server processes: one
// round trip per batch, state that outlives the store object, a new epoch
// for a flushed inbox, 503-style failures while Redis is away and recovery
// when it is back, and Redis Cluster routing through a slot migration.
#include "store/redis/redis_inbox_store.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <variant>

#include "core/ids.hpp"
#include "redis/redis_process.hpp"
#include "store/redis/slot_map.hpp"

namespace herald::store {
namespace {

using namespace std::chrono_literals;
using herald::testing::RedisCluster;
using herald::testing::RedisProcess;
using herald::testing::redis_command;
using herald::testing::redis_command_list;
using Seqs = std::vector<std::uint64_t>;

constexpr std::int64_t kT0 = 1764000000000;

NewMessage msg(std::string user, std::string id) {
  NewMessage m;
  m.user = std::move(user);
  m.id = std::move(id);
  m.event = "e";
  m.data_json = R"({"id":")" + m.id + R"("})";
  m.accepted_at_ms = kT0;
  return m;
}

std::unique_ptr<RedisInboxStore> open(const std::string& url, std::string prefix = "t" + random_hex(6) + ":") {
  RedisStoreOptions options;
  options.key_prefix = std::move(prefix);
  options.link.backoff_max = 200ms;  // tests wait for recovery
  return std::make_unique<RedisInboxStore>(parse_redis_url(url), StorePolicy{}, options);
}

std::uint64_t seq_of(const AppendOutcome& o) {
  const auto* r = std::get_if<AppendResult>(&o);
  return r == nullptr ? 0 : r->seq;
}

Seqs retained(InboxStore& store, std::string_view user) {
  Seqs out;
  for (const auto& m : store.read_after(user, 0, 1000, kT0)) out.push_back(m->seq);
  return out;
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds within = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

TEST(RedisStore, ABatchOfManyPublishesIsOneRoundTrip) {
  RedisProcess redis;
  auto store = open(redis.url());
  // Loads the script and gives every user an inbox: a user's first message
  // also tells the global expiry index, in a second round trip.
  std::vector<NewMessage> warm;
  for (int i = 0; i < 10; ++i) warm.push_back(msg("u" + std::to_string(i), "w"));
  store->append(warm, kT0);
  std::vector<NewMessage> batch;
  for (int i = 0; i < 190; ++i) batch.push_back(msg("u" + std::to_string(i % 10), "m" + std::to_string(i)));
  const auto before = store->link_stats().round_trips.load();
  const auto out = store->append(batch, kT0);
  EXPECT_EQ(store->link_stats().round_trips.load() - before, 1u);
  ASSERT_EQ(out.size(), 190u);
  EXPECT_EQ(seq_of(out[189]), 20u);
}

TEST(RedisStore, EverythingOutlivesTheStoreObject) {
  RedisProcess redis;
  const std::string prefix = "p" + random_hex(4) + ":";
  std::string epoch;
  {
    auto store = open(redis.url(), prefix);
    store->append(std::vector<NewMessage>{msg("u", "a"), msg("u", "b")}, kT0);
    store->commit_cursors(std::vector<CursorUpdate>{{"u", "phone", 1}});
    ASSERT_EQ(store->schedule(msg("u", "later"), kT0 + 100), ScheduleResult::scheduled);
    epoch = store->state("u").epoch;
  }
  auto store = open(redis.url(), prefix);
  EXPECT_EQ(store->state("u").epoch, epoch);
  EXPECT_EQ(store->state("u").head_seq, 2u);
  EXPECT_EQ(store->cursor("u", "phone"), 1u);
  EXPECT_EQ(store->scheduled_count(), 1u);
  const auto dup = store->append(std::vector<NewMessage>{msg("u", "a")}, kT0);
  EXPECT_TRUE(std::get<AppendResult>(dup[0]).duplicate);
  EXPECT_EQ(retained(*store, "u"), (Seqs{1, 2}));
}

TEST(RedisStore, AFlushedInboxGetsANewEpochAndStartsAgainAtOne) {
  RedisProcess redis;
  auto store = open(redis.url());
  store->append(std::vector<NewMessage>{msg("u", "a"), msg("u", "b")}, kT0);
  const std::string before = store->state("u").epoch;
  redis_command(redis.port(), {"FLUSHALL"});
  const InboxState after = store->state("u");
  EXPECT_NE(after.epoch, before);
  EXPECT_FALSE(after.epoch.empty());
  EXPECT_EQ(after.head_seq, 0u);
  EXPECT_EQ(seq_of(store->append(std::vector<NewMessage>{msg("u", "c")}, kT0)[0]), 1u);
}

TEST(RedisStore, WhileRedisIsDownAppendsAreUnavailableAndNothingAcceptedIsLost) {
  RedisProcess redis({"--appendonly", "yes", "--appendfsync", "always"});
  auto store = open(redis.url());
  for (int i = 1; i <= 3; ++i) {
    ASSERT_EQ(seq_of(store->append(std::vector<NewMessage>{msg("u", "m" + std::to_string(i))}, kT0)[0]),
              static_cast<std::uint64_t>(i));
  }
  redis.stop();
  const auto failed = store->append(std::vector<NewMessage>{msg("u", "x"), msg("v", "y")}, kT0);
  ASSERT_EQ(failed.size(), 2u);
  for (const auto& o : failed) {
    ASSERT_TRUE(std::holds_alternative<errc>(o));
    EXPECT_EQ(std::get<errc>(o), errc::store_unavailable);
  }
  EXPECT_FALSE(store->healthy());
  EXPECT_TRUE(store->read_after("u", 0, 10, kT0).empty());

  redis.restart();
  ASSERT_TRUE(eventually([&] { return store->healthy(); }));
  EXPECT_GE(store->link_stats().reconnects.load(), 1u);
  EXPECT_EQ(seq_of(store->append(std::vector<NewMessage>{msg("u", "m4")}, kT0)[0]), 4u);
  EXPECT_EQ(retained(*store, "u"), (Seqs{1, 2, 3, 4}));
}

TEST(RedisStore, DeadLettersACrashedCallerLeftBehindReachTheLogWithTheNextAppend) {
  RedisProcess redis;
  const std::string prefix = "d" + random_hex(4) + ":";
  auto store = open(redis.url(), prefix);
  // As a Herald that died between the user's script and the global log
  // write would leave it: one minute old, in the user's dead_out list.
  const std::string left = R"({"u":"u","s":"7","i":"lost-7","e":"e","d":"{}","r":"trimmed","t":")" +
                           std::to_string(kT0 - 70000) + R"(","a":")" + std::to_string(kT0 - 60000) + R"("})";
  redis_command(redis.port(), {"RPUSH", prefix + "{u:u}:dead_out", left});
  const std::string fresh = R"({"u":"u","s":"8","i":"moving-8","e":"e","d":"{}","r":"trimmed","t":"0","a":")" +
                            std::to_string(kT0 - 10) + R"("})";
  redis_command(redis.port(), {"RPUSH", prefix + "{u:u}:dead_out", fresh});  // another caller is moving it
  store->append(std::vector<NewMessage>{msg("u", "a")}, kT0);
  const auto dead = store->dead_letters(0, 10);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].message_id, "lost-7");
  EXPECT_EQ(dead[0].seq, 7u);
  EXPECT_EQ(dead[0].reason, DeadReason::trimmed);
  EXPECT_EQ(redis_command(redis.port(), {"LLEN", prefix + "{u:u}:dead_out"}), "1");
}

TEST(RedisStore, ReportsRedisPersistenceForTheStartupCheck) {
  RedisProcess redis({"--appendonly", "yes", "--appendfsync", "always"});
  auto store = open(redis.url());
  EXPECT_EQ(store->persistence(), "appendonly=yes appendfsync=always");
}

TEST(RedisStore, ARedisDownAtStartMakesTheStoreUnhealthyNotTheServerFail) {
  auto store = open("redis://127.0.0.1:1");
  EXPECT_FALSE(store->healthy());
  EXPECT_TRUE(std::holds_alternative<errc>(store->append(std::vector<NewMessage>{msg("u", "a")}, kT0)[0]));
  EXPECT_EQ(store->state("u").epoch, "");
}

// The slot that holds a user's keys, and the node serving it.
struct SlotOwner {
  std::uint16_t slot;
  std::size_t node;
};

SlotOwner owner_of(RedisCluster& cluster, std::string_view user) {
  const auto slot = key_slot("{u:" + std::string(user) + "}");
  for (std::size_t i = 0; i < cluster.nodes().size(); ++i) {
    const auto n = redis_command(cluster.nodes()[i]->port(), {"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)});
    if (n != "0") return {slot, i};
  }
  throw std::runtime_error("no node holds the user's keys");
}

TEST(RedisClusterStore, UsersSpreadOverEveryMasterWithEachUsersKeysInOneSlot) {
  RedisCluster cluster;
  auto store = open(cluster.url());
  std::vector<NewMessage> batch;
  for (int i = 0; i < 60; ++i) batch.push_back(msg("user-" + std::to_string(i), "m"));
  for (const auto& o : store->append(batch, kT0)) EXPECT_EQ(seq_of(o), 1u);
  for (const auto& node : cluster.nodes()) {
    EXPECT_NE(redis_command(node->port(), {"DBSIZE"}), "0") << node->address();
  }
  const auto owner = owner_of(cluster, "user-7");
  const auto keys = redis_command_list(cluster.nodes()[owner.node]->port(),
                                       {"CLUSTER", "GETKEYSINSLOT", std::to_string(owner.slot), "100"});
  EXPECT_GE(keys.size(), 5u);  // meta, inbox, expiry, dedup, dedup_at
  EXPECT_EQ(store->link_stats().redirects.load(), 0u);
}

TEST(RedisClusterStore, FollowsAskThenMovedWhileAUsersSlotMigrates) {
  RedisCluster cluster;
  auto store = open(cluster.url());
  const std::string user = "migrant";
  for (int i = 1; i <= 3; ++i) store->append(std::vector<NewMessage>{msg(user, "m" + std::to_string(i))}, kT0);
  const auto owner = owner_of(cluster, user);
  auto& nodes = cluster.nodes();
  const int src = nodes[owner.node]->port();
  const int dst = nodes[(owner.node + 1) % nodes.size()]->port();
  const std::string slot = std::to_string(owner.slot);
  const std::string src_id = redis_command(src, {"CLUSTER", "MYID"});
  const std::string dst_id = redis_command(dst, {"CLUSTER", "MYID"});

  // Migrate every key, but leave the slot in migration: the source answers
  // ASK; a one-key read follows it. A script over all the user's keys gets
  // TRYAGAIN from the importing node (some of its keys do not exist there)
  // until the migration ends: unavailable, the publisher retries.
  redis_command(dst, {"CLUSTER", "SETSLOT", slot, "IMPORTING", src_id});
  redis_command(src, {"CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id});
  auto keys = redis_command_list(src, {"CLUSTER", "GETKEYSINSLOT", slot, "1000"});
  ASSERT_FALSE(keys.empty());
  std::vector<std::string> migrate = {"MIGRATE", "127.0.0.1", std::to_string(dst), "", "0", "5000", "KEYS"};
  migrate.insert(migrate.end(), keys.begin(), keys.end());
  redis_command(src, migrate);
  EXPECT_EQ(retained(*store, user), (Seqs{1, 2, 3}));
  const auto after_ask = store->link_stats().redirects.load();
  EXPECT_GE(after_ask, 1u);
  const auto during = store->append(std::vector<NewMessage>{msg(user, "m4")}, kT0);
  ASSERT_TRUE(std::holds_alternative<errc>(during[0]));
  EXPECT_EQ(std::get<errc>(during[0]), errc::store_unavailable);

  // Finish the migration: the source answers MOVED, the map is refreshed.
  for (const auto& n : nodes) redis_command(n->port(), {"CLUSTER", "SETSLOT", slot, "NODE", dst_id});
  EXPECT_EQ(seq_of(store->append(std::vector<NewMessage>{msg(user, "m4")}, kT0)[0]), 4u);
  EXPECT_GT(store->link_stats().redirects.load(), after_ask);
  EXPECT_EQ(seq_of(store->append(std::vector<NewMessage>{msg(user, "m5")}, kT0)[0]), 5u);
  EXPECT_EQ(retained(*store, user), (Seqs{1, 2, 3, 4, 5}));
  const auto again = store->link_stats().redirects.load();
  EXPECT_EQ(seq_of(store->append(std::vector<NewMessage>{msg(user, "m6")}, kT0)[0]), 6u);
  EXPECT_EQ(store->link_stats().redirects.load(), again);  // the map knows now
}

}  // namespace
}  // namespace herald::store
