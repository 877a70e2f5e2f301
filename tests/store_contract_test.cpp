// The InboxStore and ScheduleStore contracts (store/inbox_store.hpp,
// store/schedule_store.hpp), run against every backend, then what only a
// durable backend promises: state survives a restart (PROTOCOL.md 10).
#include "store/inbox_store.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <thread>
#include <variant>

#include "core/ids.hpp"
#include "redis/redis_process.hpp"
#include "store/memory/memory_inbox_store.hpp"
#include "store/redis/redis_inbox_store.hpp"
#include "store/rocksdb/rocksdb_inbox_store.hpp"
#include "store/schedule_store.hpp"
#include "store/sync_mode.hpp"

#include <rocksdb/db.h>

namespace herald::store {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::int64_t kT0 = 1764000000000;  // accepted-at of every test message

// ---- helpers shared by both suites ----

// A directory for one test, removed with everything in it.
class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("herald-store-test-" + random_hex(8))) {
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

NewMessage msg(std::string user, std::string id, std::string collapse_key = {},
               std::int64_t ttl_ms = 0) {
  NewMessage m;
  m.user = std::move(user);
  m.id = std::move(id);
  m.event = "order.status";
  m.data_json = R"({"id":")" + m.id + R"("})";
  m.collapse_key = std::move(collapse_key);
  m.ttl_ms = ttl_ms;
  m.trace_id = "trace-" + m.id;
  m.accepted_at_ms = kT0;
  return m;
}

std::vector<AppendResult> append_all(InboxStore& store, const std::vector<NewMessage>& batch,
                                     std::int64_t now_ms = kT0) {
  const auto out = store.append(batch, now_ms);
  std::vector<AppendResult> results;
  EXPECT_EQ(out.size(), batch.size());
  for (const auto& o : out) {
    if (const auto* r = std::get_if<AppendResult>(&o)) {
      results.push_back(*r);
    } else {
      ADD_FAILURE() << "append failed: errc " << static_cast<int>(std::get<errc>(o));
      results.push_back({});
    }
  }
  return results;
}

AppendResult append_one(InboxStore& store, const NewMessage& m, std::int64_t now_ms = kT0) {
  return append_all(store, {m}, now_ms).at(0);
}

std::vector<std::uint64_t> seqs_of(const std::vector<MessagePtr>& messages) {
  std::vector<std::uint64_t> out;
  for (const auto& m : messages) out.push_back(m->seq);
  return out;
}

std::vector<std::uint64_t> retained(InboxStore& store, std::string_view user,
                                    std::int64_t now_ms = kT0) {
  return seqs_of(store.read_after(user, 0, 100000, now_ms));
}

using Seqs = std::vector<std::uint64_t>;

// ---- the contract, every backend ----

struct Backend {
  std::string name;
  std::function<std::unique_ptr<InboxStore>(const fs::path& dir, StorePolicy policy)> open;
};

void PrintTo(const Backend& b, std::ostream* os) { *os << b.name; }

class InboxStoreContract : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override { store_ = GetParam().open(dir_.path() / "db", StorePolicy{}); }

  // Starts the test over with another policy.
  void use_policy(StorePolicy policy) {
    store_.reset();
    fs::remove_all(dir_.path() / "db");
    store_ = GetParam().open(dir_.path() / "db", policy);
  }

  InboxStore& store() { return *store_; }

 private:
  TempDir dir_;
  std::unique_ptr<InboxStore> store_;
};

TEST_P(InboxStoreContract, SeqsStartAtOneAndIncreasePerUserIndependently) {
  EXPECT_EQ(append_one(store(), msg("alice", "a1")).seq, 1u);
  EXPECT_EQ(append_one(store(), msg("alice", "a2")).seq, 2u);
  EXPECT_EQ(append_one(store(), msg("bob", "b1")).seq, 1u);
  EXPECT_EQ(append_one(store(), msg("alice", "a3")).seq, 3u);
  EXPECT_EQ(append_one(store(), msg("bob", "b2")).seq, 2u);
  EXPECT_EQ(retained(store(), "alice"), (Seqs{1, 2, 3}));
  EXPECT_EQ(retained(store(), "bob"), (Seqs{1, 2}));
  EXPECT_EQ(store().state("alice").head_seq, 3u);
}

TEST_P(InboxStoreContract, DuplicateIdWithinWindowReturnsOriginalSeqAndAppendsNothing) {
  const auto first = append_one(store(), msg("u", "ord-77"));
  append_one(store(), msg("u", "other"));
  const auto again = append_one(store(), msg("u", "ord-77"), kT0 + 1000);
  EXPECT_FALSE(first.duplicate);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.seq, first.seq);
  EXPECT_EQ(again.id, "ord-77");
  EXPECT_EQ(retained(store(), "u"), (Seqs{1, 2}));
  EXPECT_EQ(store().state("u").head_seq, 2u);
}

TEST_P(InboxStoreContract, DuplicateIdAfterTheWindowIsAppendedAgain) {
  use_policy(StorePolicy{.dedup_window_ms = 1000});
  append_one(store(), msg("u", "x"), kT0);
  EXPECT_TRUE(append_one(store(), msg("u", "x"), kT0 + 1000).duplicate);
  const auto late = append_one(store(), msg("u", "x"), kT0 + 1001);
  EXPECT_FALSE(late.duplicate);
  EXPECT_EQ(late.seq, 2u);
  EXPECT_TRUE(append_one(store(), msg("u", "x"), kT0 + 1500).duplicate);
}

TEST_P(InboxStoreContract, SameIdForAnotherUserIsNotADuplicate) {
  append_one(store(), msg("alice", "same"));
  const auto r = append_one(store(), msg("bob", "same"));
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(r.seq, 1u);
}

TEST_P(InboxStoreContract, CollapseRemovesTheOlderMessageWithoutADeadLetter) {
  append_one(store(), msg("u", "m1", "track-77"));
  append_one(store(), msg("u", "m2"));
  append_one(store(), msg("u", "m3", "track-77"));
  EXPECT_EQ(store().get("u", 1), nullptr);
  ASSERT_NE(store().get("u", 3), nullptr);
  EXPECT_EQ(retained(store(), "u"), (Seqs{2, 3}));
  EXPECT_EQ(store().dead_letter_count(), 0u);
  EXPECT_EQ(store().state("u").max_lost_seq, 0u);
  EXPECT_EQ(store().state("u").head_seq, 3u);
  append_one(store(), msg("u", "m4", "track-77"));
  EXPECT_EQ(retained(store(), "u"), (Seqs{2, 4}));
}

TEST_P(InboxStoreContract, CollapseKeyOfAnExpiredMessageRemovesNothingElse) {
  append_one(store(), msg("u", "m1", "k", 1000));
  EXPECT_EQ(store().expire(kT0 + 1000, 10), 1u);
  append_one(store(), msg("u", "m2"));
  append_one(store(), msg("u", "m3", "k"));
  EXPECT_EQ(retained(store(), "u"), (Seqs{2, 3}));
}

TEST_P(InboxStoreContract, RetentionTrimKeepsTheNewestAndDeadLettersOnlyUnackedOnes) {
  use_policy(StorePolicy{.retention_max_messages = 3});
  store().register_device("u", "phone", 0);
  store().commit_cursors(std::vector<CursorUpdate>{{"u", "phone", 1}});
  for (int i = 1; i <= 5; ++i) append_one(store(), msg("u", "m" + std::to_string(i)));
  EXPECT_EQ(retained(store(), "u"), (Seqs{3, 4, 5}));
  const auto dead = store().dead_letters(0, 10);
  ASSERT_EQ(dead.size(), 1u);  // seq 1 was acked, seq 2 was not
  EXPECT_EQ(dead[0].seq, 2u);
  EXPECT_EQ(dead[0].reason, DeadReason::trimmed);
  EXPECT_EQ(dead[0].user, "u");
  EXPECT_EQ(store().state("u").max_lost_seq, 2u);
  EXPECT_EQ(store().state("u").head_seq, 5u);
}

TEST_P(InboxStoreContract, RetentionTrimWithNoKnownDeviceDeadLettersEveryTrimmedMessage) {
  use_policy(StorePolicy{.retention_max_messages = 2});
  for (int i = 1; i <= 4; ++i) append_one(store(), msg("u", "m" + std::to_string(i)));
  EXPECT_EQ(retained(store(), "u"), (Seqs{3, 4}));
  const auto dead = store().dead_letters(0, 10);
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0].seq, 1u);
  EXPECT_EQ(dead[1].seq, 2u);
  EXPECT_EQ(store().state("u").max_lost_seq, 2u);
}

TEST_P(InboxStoreContract, TrimDeadLettersWhenAnyDeviceIsBehind) {
  use_policy(StorePolicy{.retention_max_messages = 1});
  store().register_device("u", "phone", 5);
  store().register_device("u", "laptop", 0);
  append_one(store(), msg("u", "m1"));
  append_one(store(), msg("u", "m2"));
  ASSERT_EQ(store().dead_letters(0, 10).size(), 1u);
  store().commit_cursors(std::vector<CursorUpdate>{{"u", "laptop", 2}});
  append_one(store(), msg("u", "m3"));
  EXPECT_EQ(store().dead_letters(0, 10).size(), 1u);  // seq 2: both devices had acked it
  EXPECT_EQ(store().state("u").max_lost_seq, 1u);
}

TEST_P(InboxStoreContract, ExpireRespectsTheBudgetAndDeadLettersWithReasonExpired) {
  for (int i = 1; i <= 5; ++i) append_one(store(), msg("u", "m" + std::to_string(i), {}, 1000));
  append_one(store(), msg("u", "long", {}, 100000));
  append_one(store(), msg("v", "v1", {}, 500));
  EXPECT_EQ(store().expire(kT0 + 999, 100), 1u);  // only v's
  EXPECT_EQ(store().expire(kT0 + 1000, 2), 2u);
  EXPECT_EQ(store().expire(kT0 + 1000, 2), 2u);
  EXPECT_EQ(store().expire(kT0 + 1000, 2), 1u);
  EXPECT_EQ(store().expire(kT0 + 1000, 2), 0u);
  EXPECT_EQ(retained(store(), "u"), (Seqs{6}));
  const auto dead = store().dead_letters(0, 100);
  ASSERT_EQ(dead.size(), 6u);
  for (const auto& d : dead) EXPECT_EQ(d.reason, DeadReason::expired);
  EXPECT_EQ(store().state("u").max_lost_seq, 5u);
  EXPECT_EQ(store().expire(kT0 + 1000, 0), 0u);
}

// An id the API generated, sent back by its publisher: a duplicate while
// the message is retained, after it has left within the window, and not
// once the window is over (PROTOCOL.md 7).
TEST_P(InboxStoreContract, AGeneratedIdSentBackIsADuplicateForTheWholeWindow) {
  const std::string id = generated_message_id();
  ASSERT_TRUE(has_generated_id_shape(id));
  NewMessage first = msg("u", id, {}, 1000);
  first.id_generated = true;
  append_one(store(), first);
  append_one(store(), msg("u", "other"));
  const auto again = [&](std::int64_t now) {
    NewMessage m = msg("u", id);
    m.accepted_at_ms = now;
    return append_all(store(), {m}, now).at(0);
  };
  auto r = again(kT0 + 10);
  EXPECT_TRUE(r.duplicate);
  EXPECT_EQ(r.seq, 1u);
  ASSERT_EQ(store().expire(kT0 + 1000, 10), 1u);  // gone, within the window
  r = again(kT0 + 2000);
  EXPECT_TRUE(r.duplicate);
  EXPECT_EQ(r.seq, 1u);
  r = again(kT0 + 86400000 + 1);
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(r.seq, 3u);
}

TEST_P(InboxStoreContract, AGeneratedIdPastTheWindowIsNewWhileItsMessageIsRetained) {
  const std::string id = generated_message_id();
  NewMessage first = msg("u", id);
  first.id_generated = true;
  append_one(store(), first);
  NewMessage m = msg("u", id);
  m.accepted_at_ms = kT0 + 86400000 + 1;
  const auto r = append_all(store(), {m}, kT0 + 86400000 + 1).at(0);
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(r.seq, 2u);
}

TEST(GeneratedId, HasItsShapeAndOthersMostlyDoNot) {
  EXPECT_TRUE(has_generated_id_shape(generated_message_id()));
  EXPECT_NE(generated_message_id(), generated_message_id());
  EXPECT_FALSE(has_generated_id_shape("ord-77"));
  EXPECT_FALSE(has_generated_id_shape("m-0123456789ABCDEF01234567"));  // upper case
  EXPECT_FALSE(has_generated_id_shape("m-0123456789abcdef0123456"));   // 23 digits
  EXPECT_TRUE(has_generated_id_shape("m-0123456789abcdef01234567"));   // a publisher may choose it
}

// One group commit: runs of a user's messages, interleaved users, a far
// TTL in the middle of a run; the budget cuts into runs.
TEST_P(InboxStoreContract, AGroupCommitExpiresWholeWithinEachBudget) {
  std::vector<NewMessage> batch;
  for (int i = 1; i <= 6; ++i) batch.push_back(msg(i % 2 == 1 ? "u" : "v", "m" + std::to_string(i), {}, 1000));
  batch.push_back(msg("u", "far", {}, 100000));
  batch.push_back(msg("u", "m7", {}, 1000));
  append_all(store(), batch);  // u: 1-3, 4 (far), 5; v: 1-3
  EXPECT_EQ(store().expire(kT0 + 999, 100), 0u);
  EXPECT_EQ(store().expire(kT0 + 1000, 2), 2u);
  EXPECT_EQ(store().expire(kT0 + 1000, 3), 3u);
  EXPECT_EQ(store().expire(kT0 + 1000, 10), 2u);
  EXPECT_EQ(store().expire(kT0 + 1000, 10), 0u);
  EXPECT_EQ(retained(store(), "u"), (Seqs{4}));
  EXPECT_EQ(retained(store(), "v"), Seqs{});
  EXPECT_EQ(store().dead_letters(0, 100).size(), 7u);
  EXPECT_EQ(store().expire(kT0 + 100000, 10), 1u);
}

// A collapsed message inside an expiry run: the run's sweep passes over it.
TEST_P(InboxStoreContract, ARunWithACollapsedMessageExpiresTheRest) {
  append_all(store(), {msg("u", "m1", "k", 1000), msg("u", "m2", {}, 1000), msg("u", "m3", {}, 1000)});
  append_one(store(), msg("u", "m4", "k", 1000));  // replaces seq 1
  EXPECT_EQ(retained(store(), "u"), (Seqs{2, 3, 4}));
  EXPECT_EQ(store().expire(kT0 + 1000, 10), 3u);
  EXPECT_EQ(retained(store(), "u"), Seqs{});
  EXPECT_EQ(store().dead_letters(0, 10).size(), 3u);
}

TEST_P(InboxStoreContract, ExpiredMessagesAckedByEveryDeviceLeaveWithoutADeadLetter) {
  store().register_device("u", "phone", 0);
  append_one(store(), msg("u", "m1", {}, 1000));
  append_one(store(), msg("u", "m2", {}, 1000));
  store().commit_cursors(std::vector<CursorUpdate>{{"u", "phone", 1}});
  EXPECT_EQ(store().expire(kT0 + 5000, 10), 2u);
  const auto dead = store().dead_letters(0, 10);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].seq, 2u);
  EXPECT_EQ(retained(store(), "u", kT0), Seqs{});
}

// PROTOCOL.md 10: an ack above the cursor counts as an ack. The embedded
// stores ask the gateway's ledger (a hook); redis, which decides inside its
// scripts, keeps the marks the gateway commits.
TEST_P(InboxStoreContract, AcksAboveTheCursorSpareMessagesFromTheDeadLetterLog) {
  use_policy(StorePolicy{.retention_max_messages = 3});
  store().register_device("u", "phone", 0);
  for (int i = 1; i <= 3; ++i) append_one(store(), msg("u", "m" + std::to_string(i), {}, 1000));
  append_one(store(), msg("u", "m4"));  // trims seq 1 (unacked)
  if (store().keeps_ack_marks()) {
    const std::vector<AckMark> marks = {{"u", "phone", 2}, {"u", "phone", 4}};
    store().commit_ack_marks(marks);
  } else {
    store().set_acked_above_cursor([](std::string_view user, std::string_view device, std::uint64_t seq) {
      return user == "u" && device == "phone" && (seq == 2 || seq == 4);
    });
  }
  append_one(store(), msg("u", "m5"));  // trims seq 2 (acked above the cursor)
  EXPECT_EQ(store().expire(kT0 + 5000, 10), 1u);  // seq 3, unacked
  Seqs dead;
  for (const auto& d : store().dead_letters(0, 10)) dead.push_back(d.seq);
  EXPECT_EQ(dead, (Seqs{1, 3}));
  EXPECT_EQ(store().state("u").max_lost_seq, 3u);
}

TEST_P(InboxStoreContract, ALostMarkIsTheHighestSeqThatLeftBeforeTheDeviceAckedIt) {
  use_policy(StorePolicy{.retention_max_messages = 2});
  store().register_device("u", "phone", 0);
  store().register_device("u", "tablet", 0);
  EXPECT_EQ(store().lost_mark("u", "phone"), 0u);
  EXPECT_EQ(store().lost_mark("u", "laptop"), std::nullopt);  // not known
  append_one(store(), msg("u", "m1"));
  append_one(store(), msg("u", "m2"));
  const std::vector<CursorUpdate> tablet_acks = {{"u", "tablet", 2}};
  store().commit_cursors(tablet_acks);
  append_one(store(), msg("u", "m3"));  // trims 1: the phone had not acked it
  append_one(store(), msg("u", "m4"));  // trims 2
  EXPECT_EQ(store().lost_mark("u", "phone"), 2u);
  EXPECT_EQ(store().lost_mark("u", "tablet"), 0u);  // acked both before they left
  // The phone's cursor passes the gap; its mark stays.
  const std::vector<CursorUpdate> phone_acks = {{"u", "phone", 4}};
  store().commit_cursors(phone_acks);
  EXPECT_EQ(store().lost_mark("u", "phone"), 2u);
  // A device registered later never acked what left before it existed.
  store().register_device("u", "laptop", 4);
  EXPECT_EQ(store().lost_mark("u", "laptop"), 2u);
  // Expiry counts like trim, and a mark never goes down.
  const std::vector<CursorUpdate> tablet_catches_up = {{"u", "tablet", 4}};
  store().commit_cursors(tablet_catches_up);
  append_one(store(), msg("u", "m5", {}, 1000));  // trims 3, acked by all
  EXPECT_EQ(store().expire(kT0 + 5000, 10), 1u);  // seq 5, acked by nobody
  EXPECT_EQ(store().lost_mark("u", "phone"), 5u);
  EXPECT_EQ(store().lost_mark("u", "tablet"), 5u);
  EXPECT_EQ(store().lost_mark("u", "laptop"), 5u);
  EXPECT_EQ(store().dead_letters(0, 10).size(), 3u);  // 1, 2, 5
}

TEST_P(InboxStoreContract, ReadAfterSkipsExpiredMessagesBeforeExpireRuns) {
  append_one(store(), msg("u", "m1", {}, 1000));
  append_one(store(), msg("u", "m2", {}, 5000));
  append_one(store(), msg("u", "m3", {}, 1000));
  EXPECT_EQ(retained(store(), "u", kT0 + 999), (Seqs{1, 2, 3}));
  EXPECT_EQ(retained(store(), "u", kT0 + 1000), (Seqs{2}));
  EXPECT_EQ(store().read_after("u", 0, 1, kT0 + 1000).size(), 1u);
}

TEST_P(InboxStoreContract, ReadAfterReturnsAscendingSeqsAfterTheGivenOneUpToTheLimit) {
  for (int i = 1; i <= 10; ++i) append_one(store(), msg("u", "m" + std::to_string(i)));
  EXPECT_EQ(seqs_of(store().read_after("u", 3, 4, kT0)), (Seqs{4, 5, 6, 7}));
  EXPECT_EQ(seqs_of(store().read_after("u", 8, 100, kT0)), (Seqs{9, 10}));
  EXPECT_EQ(seqs_of(store().read_after("u", 10, 100, kT0)), Seqs{});
  EXPECT_EQ(seqs_of(store().read_after("u", 0, 0, kT0)), Seqs{});
  EXPECT_EQ(seqs_of(store().read_after("nobody", 0, 10, kT0)), Seqs{});
}

TEST_P(InboxStoreContract, GetReturnsEveryFieldOfARetainedMessage) {
  NewMessage m = msg("u", "ord-77-shipped", "order-77-track", 259200000);
  m.data_json = R"({"order":"77","big":12345678901234567890})";
  m.accepted_at_ms = kT0 + 5;
  append_one(store(), m);
  const MessagePtr got = store().get("u", 1);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->seq, 1u);
  EXPECT_EQ(got->id, "ord-77-shipped");
  EXPECT_EQ(got->event, "order.status");
  EXPECT_EQ(got->data_json, m.data_json);
  EXPECT_EQ(got->collapse_key, "order-77-track");
  EXPECT_EQ(got->trace_id, "trace-ord-77-shipped");
  EXPECT_EQ(got->ts_ms, kT0 + 5);
  EXPECT_EQ(got->expires_at_ms, kT0 + 5 + 259200000);
  EXPECT_EQ(store().get("u", 2), nullptr);
  EXPECT_EQ(store().get("nobody", 1), nullptr);
}

TEST_P(InboxStoreContract, DefaultTtlIsTheRetentionTtl) {
  use_policy(StorePolicy{.retention_ttl_ms = 60000});
  append_one(store(), msg("u", "m1"));
  EXPECT_EQ(store().get("u", 1)->expires_at_ms, kT0 + 60000);
}

TEST_P(InboxStoreContract, CursorNeverMovesBackwards) {
  store().commit_cursors(std::vector<CursorUpdate>{{"u", "phone", 7}});
  store().commit_cursors(std::vector<CursorUpdate>{{"u", "phone", 3}});
  EXPECT_EQ(store().cursor("u", "phone"), 7u);
  store().commit_cursors(
      std::vector<CursorUpdate>{{"u", "phone", 9}, {"u", "phone", 8}, {"v", "tab", 2}});
  EXPECT_EQ(store().cursor("u", "phone"), 9u);
  EXPECT_EQ(store().cursor("v", "tab"), 2u);
}

TEST_P(InboxStoreContract, RegisterDeviceKeepsAnExistingCursor) {
  store().register_device("u", "phone", 4);
  EXPECT_EQ(store().cursor("u", "phone"), 4u);
  store().register_device("u", "phone", 0);
  EXPECT_EQ(store().cursor("u", "phone"), 4u);
  store().commit_cursors(std::vector<CursorUpdate>{{"u", "phone", 6}});
  store().register_device("u", "phone", 10);
  EXPECT_EQ(store().cursor("u", "phone"), 6u);
}

TEST_P(InboxStoreContract, CursorsListEveryKnownDevice) {
  EXPECT_TRUE(store().cursors("u").empty());
  EXPECT_EQ(store().cursor("u", "phone"), std::nullopt);
  store().register_device("u", "phone", 1);
  store().register_device("u", "laptop", 0);
  store().commit_cursors(std::vector<CursorUpdate>{{"u", "tablet", 3}});
  const auto all = store().cursors("u");
  ASSERT_EQ(all.size(), 3u);
  std::map<std::string, std::uint64_t> by_device;
  for (const auto& c : all) by_device[c.device] = c.cursor;
  EXPECT_EQ(by_device, (std::map<std::string, std::uint64_t>{{"laptop", 0}, {"phone", 1}, {"tablet", 3}}));
  EXPECT_EQ(store().cursor("u", "other"), std::nullopt);
  EXPECT_TRUE(store().cursors("v").empty());
}

TEST_P(InboxStoreContract, StateGivesAStableEpochHeadSeqAndMaxLostSeq) {
  const InboxState fresh = store().state("u");
  EXPECT_FALSE(fresh.epoch.empty());
  EXPECT_EQ(fresh.head_seq, 0u);
  EXPECT_EQ(fresh.max_lost_seq, 0u);
  EXPECT_EQ(store().state("u").epoch, fresh.epoch);
  append_one(store(), msg("u", "m1", {}, 10));
  append_one(store(), msg("u", "m2"));
  EXPECT_EQ(store().expire(kT0 + 10, 10), 1u);
  const InboxState later = store().state("u");
  EXPECT_EQ(later.epoch, fresh.epoch);
  EXPECT_EQ(later.head_seq, 2u);
  EXPECT_EQ(later.max_lost_seq, 1u);
}

TEST_P(InboxStoreContract, HeadSeqsGivesEachUsersHeadInOrder) {
  append_all(store(), {msg("a", "1"), msg("a", "2"), msg("b", "1")});
  const std::vector<std::string> users = {"b", "nobody", "a"};
  EXPECT_EQ(store().head_seqs(users), (Seqs{1, 0, 2}));
  EXPECT_EQ(store().head_seqs({}), Seqs{});
}

TEST_P(InboxStoreContract, ABatchWithSeveralMessagesForOneUserIsHandledInOrder) {
  const auto results = append_all(store(), {msg("u", "a", "k"), msg("v", "x"), msg("u", "b"),
                                            msg("u", "a"), msg("u", "c", "k"), msg("v", "x"),
                                            msg("u", "b"), msg("v", "y")});
  ASSERT_EQ(results.size(), 8u);
  const auto seq_dup = [&](std::size_t i) { return std::pair(results[i].seq, results[i].duplicate); };
  EXPECT_EQ(seq_dup(0), std::pair(std::uint64_t{1}, false));
  EXPECT_EQ(seq_dup(1), std::pair(std::uint64_t{1}, false));
  EXPECT_EQ(seq_dup(2), std::pair(std::uint64_t{2}, false));
  EXPECT_EQ(seq_dup(3), std::pair(std::uint64_t{1}, true));
  EXPECT_EQ(seq_dup(4), std::pair(std::uint64_t{3}, false));
  EXPECT_EQ(seq_dup(5), std::pair(std::uint64_t{1}, true));
  EXPECT_EQ(seq_dup(6), std::pair(std::uint64_t{2}, true));
  EXPECT_EQ(seq_dup(7), std::pair(std::uint64_t{2}, false));
  EXPECT_EQ(results[4].id, "c");
  EXPECT_EQ(retained(store(), "u"), (Seqs{2, 3}));  // 1 collapsed by 3
  EXPECT_EQ(retained(store(), "v"), (Seqs{1, 2}));
  EXPECT_EQ(store().state("u").head_seq, 3u);
  EXPECT_EQ(store().dead_letter_count(), 0u);
}

TEST_P(InboxStoreContract, ABatchTrimsWithinItselfOldestFirst) {
  use_policy(StorePolicy{.retention_max_messages = 2});
  std::vector<NewMessage> batch;
  for (int i = 1; i <= 5; ++i) batch.push_back(msg("u", "m" + std::to_string(i)));
  batch.push_back(msg("u", "m1"));  // a duplicate of a message trimmed in this batch
  const auto results = append_all(store(), batch);
  EXPECT_TRUE(results[5].duplicate);
  EXPECT_EQ(results[5].seq, 1u);
  EXPECT_EQ(retained(store(), "u"), (Seqs{4, 5}));
  const auto dead = store().dead_letters(0, 10);
  ASSERT_EQ(dead.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(dead[i].seq, i + 1);
    EXPECT_EQ(dead[i].message_id, "m" + std::to_string(i + 1));
  }
  EXPECT_EQ(store().state("u").max_lost_seq, 3u);
  append_one(store(), msg("u", "m6"));
  EXPECT_EQ(retained(store(), "u"), (Seqs{5, 6}));
}

TEST_P(InboxStoreContract, DeadLettersPageById) {
  use_policy(StorePolicy{.retention_max_messages = 1});
  for (int i = 1; i <= 6; ++i) append_one(store(), msg("u", "m" + std::to_string(i)));
  EXPECT_EQ(store().dead_letter_count(), 5u);
  const auto ids = [](const std::vector<DeadLetter>& v) {
    Seqs out;
    for (const auto& d : v) out.push_back(d.id);
    return out;
  };
  EXPECT_EQ(ids(store().dead_letters(0, 2)), (Seqs{1, 2}));
  EXPECT_EQ(ids(store().dead_letters(2, 2)), (Seqs{3, 4}));
  EXPECT_EQ(ids(store().dead_letters(4, 10)), (Seqs{5}));
  EXPECT_EQ(ids(store().dead_letters(5, 10)), Seqs{});
  EXPECT_EQ(ids(store().dead_letters(0, 0)), Seqs{});
}

TEST_P(InboxStoreContract, ADeadLetterIsFoundByItsUserAndSeq) {
  use_policy(StorePolicy{.retention_max_messages = 1});
  for (int i = 1; i <= 4; ++i) append_one(store(), msg("u", "m" + std::to_string(i)));
  append_one(store(), msg("v", "v1"));
  append_one(store(), msg("v", "v2"));
  const auto d = store().dead_letter("u", 2);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->user, "u");
  EXPECT_EQ(d->seq, 2u);
  EXPECT_EQ(d->message_id, "m2");
  EXPECT_EQ(d->id, 2u);
  EXPECT_EQ(d->data_json, R"({"id":"m2"})");
  EXPECT_EQ(d->reason, DeadReason::trimmed);
  EXPECT_EQ(store().dead_letter("v", 1)->message_id, "v1");
  EXPECT_FALSE(store().dead_letter("u", 4).has_value());   // still in the inbox
  EXPECT_FALSE(store().dead_letter("v", 2).has_value());
  EXPECT_FALSE(store().dead_letter("w", 1).has_value());   // no such user
  EXPECT_FALSE(store().dead_letter("u", 99).has_value());  // no such seq
}

TEST_P(InboxStoreContract, ADeadLetterCarriesTheMessage) {
  NewMessage m = msg("u", "ord-1", {}, 100);
  m.data_json = R"([1,"two",null])";
  append_one(store(), m);
  ASSERT_EQ(store().expire(kT0 + 200, 10), 1u);
  const auto dead = store().dead_letters(0, 10);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].id, 1u);
  EXPECT_EQ(dead[0].user, "u");
  EXPECT_EQ(dead[0].seq, 1u);
  EXPECT_EQ(dead[0].message_id, "ord-1");
  EXPECT_EQ(dead[0].event, "order.status");
  EXPECT_EQ(dead[0].data_json, R"([1,"two",null])");
  EXPECT_EQ(dead[0].reason, DeadReason::expired);
  EXPECT_EQ(dead[0].ts_ms, kT0);
  EXPECT_EQ(dead[0].dead_at_ms, kT0 + 200);
}

TEST_P(InboxStoreContract, TheBacklogCensusCountsWhatTheSlowestDeviceHasNotAckedInBoundedSlices) {
  // 40 users; user i holds i % 4 + 1 messages. Users divisible by 4 have no
  // device (all their messages count); i % 4 == 1 acked everything; the
  // others have a device that acked one message, and a second one that
  // acked none when i % 4 == 3.
  std::uint64_t expected = 0;
  std::vector<NewMessage> batch;
  for (int i = 0; i < 40; ++i) {
    for (int k = 0; k <= i % 4; ++k) batch.push_back(msg("census-" + std::to_string(i), "m" + std::to_string(k)));
  }
  append_all(store(), batch);
  std::vector<CursorUpdate> cursors;
  for (int i = 0; i < 40; ++i) {
    const std::string user = "census-" + std::to_string(i);
    const std::uint64_t n = static_cast<std::uint64_t>(i % 4 + 1);
    if (i % 4 == 0) {
      expected += n;
      continue;
    }
    store().register_device(user, "phone", 0);
    if (i % 4 == 1) {  // acked everything: no backlog
      cursors.push_back({user, "phone", n});
      continue;
    }
    cursors.push_back({user, "phone", 1});
    if (i % 4 == 3) {
      store().register_device(user, "tablet", 0);
      expected += n;
    } else {
      expected += n - 1;
    }
  }
  store().commit_cursors(cursors);

  std::uint64_t total = 0;
  std::size_t users = 0;
  std::size_t behind = 0;
  std::size_t slices = 0;
  std::string position;
  do {
    const BacklogSlice slice = store().scan_backlog(position, 7);
    total += slice.messages;
    users += slice.users;
    behind += slice.users_behind;
    position = slice.position;
    ASSERT_LT(++slices, 100u) << "the census never completes";
  } while (!position.empty());
  EXPECT_EQ(users, 40u);
  EXPECT_EQ(total, expected);
  EXPECT_EQ(behind, 30u);
  EXPECT_GT(slices, 1u);
}

TEST(InboxBacklog, IsWhatTheSlowestDeviceLacksBoundedByWhatIsRetained) {
  EXPECT_EQ(inbox_backlog(5, 10, std::nullopt), 5u);  // no device yet: everything
  EXPECT_EQ(inbox_backlog(5, 10, 8), 2u);
  EXPECT_EQ(inbox_backlog(5, 10, 0), 5u);             // trimmed below: only what is retained
  EXPECT_EQ(inbox_backlog(5, 10, 12), 0u);            // a resume above the head
}

TEST_P(InboxStoreContract, ReadersRunConcurrentlyWithAppendsAndSeeOrderedInboxes) {
  const std::vector<std::string> users = {"u0", "u1", "u2", "u3"};
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (!done.load()) {
        for (const auto& u : users) {
          const auto seen = retained(store(), u);
          for (std::size_t i = 0; i < seen.size(); ++i) {
            if (seen[i] != i + 1) ++bad;  // no collapse or trim here: no gaps
          }
          if (!seen.empty() && store().state(u).head_seq < seen.back()) ++bad;
          if (!seen.empty() && store().get(u, seen.back()) == nullptr) ++bad;
        }
      }
    });
  }
  for (int b = 0; b < 50; ++b) {
    std::vector<NewMessage> batch;
    for (int i = 0; i < 8; ++i) batch.push_back(msg(users[static_cast<std::size_t>(i % 4)], "m" + std::to_string(b * 8 + i)));
    append_all(store(), batch);
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  for (const auto& u : users) EXPECT_EQ(store().state(u).head_seq, 100u);
}

std::unique_ptr<InboxStore> open_rocksdb(const fs::path& dir, StorePolicy policy, SyncMode mode) {
  return std::make_unique<RocksDbInboxStore>(dir.string(), policy, mode, 2ms);
}

// One real redis-server (or 3-master cluster) per test process, started on
// first use; each store gets keys of its own through a fresh key prefix.
herald::testing::RedisProcess& shared_redis() {
  static herald::testing::RedisProcess redis;
  return redis;
}
herald::testing::RedisCluster& shared_cluster() {
  static herald::testing::RedisCluster cluster;
  return cluster;
}

std::unique_ptr<RedisInboxStore> open_redis(const std::string& url, StorePolicy policy,
                                            std::size_t max_scheduled = kDefaultMaxScheduled,
                                            std::string prefix = "t" + random_hex(6) + ":") {
  RedisStoreOptions options;
  options.key_prefix = std::move(prefix);
  options.max_scheduled = max_scheduled;
  return std::make_unique<RedisInboxStore>(parse_redis_url(url), policy, options);
}

std::vector<Backend> embedded_backends() {
  return {
      Backend{"memory", [](const fs::path&, StorePolicy p) { return std::make_unique<MemoryInboxStore>(p); }},
      Backend{"rocksdb_sync_always",
              [](const fs::path& d, StorePolicy p) { return open_rocksdb(d, p, SyncMode::always); }},
      Backend{"rocksdb_sync_batch",
              [](const fs::path& d, StorePolicy p) { return open_rocksdb(d, p, SyncMode::batch); }},
      Backend{"rocksdb_sync_none",
              [](const fs::path& d, StorePolicy p) { return open_rocksdb(d, p, SyncMode::none); }},
  };
}

std::vector<Backend> all_backends() {
  auto backends = embedded_backends();
  backends.push_back(Backend{"redis", [](const fs::path&, StorePolicy p) -> std::unique_ptr<InboxStore> {
                               return open_redis(shared_redis().url(), p);
                             }});
  backends.push_back(Backend{"redis_cluster", [](const fs::path&, StorePolicy p) -> std::unique_ptr<InboxStore> {
                               return open_redis(shared_cluster().url(), p);
                             }});
  return backends;
}

std::string backend_name(const ::testing::TestParamInfo<Backend>& param_info) { return param_info.param.name; }

INSTANTIATE_TEST_SUITE_P(Backends, InboxStoreContract, ::testing::ValuesIn(all_backends()), backend_name);

// ---- the schedule contract, every backend ----

// Both interfaces of one backend object.
struct OpenedStore {
  std::unique_ptr<InboxStore> inbox;
  ScheduleStore* schedule = nullptr;  // the same object as inbox
};

template <class Store>
OpenedStore opened(std::unique_ptr<Store> store) {
  ScheduleStore* schedule = store.get();
  return OpenedStore{std::move(store), schedule};
}

struct ScheduleBackend {
  std::string name;
  std::function<OpenedStore(const fs::path& dir, StorePolicy policy, std::size_t max_scheduled)> open;
};

void PrintTo(const ScheduleBackend& b, std::ostream* os) { *os << b.name; }

NewMessage accepted_at(NewMessage m, std::int64_t at_ms) {
  m.accepted_at_ms = at_ms;
  return m;
}

std::vector<std::string> ids_of(const std::vector<ScheduledMessage>& due) {
  std::vector<std::string> out;
  for (const auto& s : due) out.push_back(s.message.user + "/" + s.message.id);
  return out;
}

std::vector<std::uint64_t> schedule_ids_of(const std::vector<ScheduledMessage>& due) {
  std::vector<std::uint64_t> out;
  for (const auto& s : due) out.push_back(s.schedule_id);
  return out;
}

using Ids = std::vector<std::string>;

class ScheduleStoreContract : public ::testing::TestWithParam<ScheduleBackend> {
 protected:
  void SetUp() override { reopen(StorePolicy{}, kDefaultMaxScheduled); }

  // Starts the test over with another policy and bound.
  void reopen(StorePolicy policy, std::size_t max_scheduled) {
    stores_ = {};
    fs::remove_all(dir_.path() / "db");
    stores_ = GetParam().open(dir_.path() / "db", policy, max_scheduled);
  }

  InboxStore& inbox() { return *stores_.inbox; }
  ScheduleStore& schedule() { return *stores_.schedule; }

 private:
  TempDir dir_;
  OpenedStore stores_;
};

TEST_P(ScheduleStoreContract, ScheduledMessagesComeDueInDeliverAtOrderAndStayUntilRemoved) {
  EXPECT_EQ(schedule().schedule(msg("u", "late"), kT0 + 300), ScheduleResult::scheduled);
  EXPECT_EQ(schedule().schedule(msg("u", "early"), kT0 + 100), ScheduleResult::scheduled);
  EXPECT_EQ(schedule().schedule(msg("v", "mid"), kT0 + 200), ScheduleResult::scheduled);
  EXPECT_EQ(schedule().schedule(msg("w", "mid-too"), kT0 + 200), ScheduleResult::scheduled);
  EXPECT_EQ(schedule().scheduled_count(), 4u);
  EXPECT_EQ(ids_of(schedule().due(kT0 + 99, 100)), Ids{});
  EXPECT_EQ(ids_of(schedule().due(kT0 + 100, 100)), (Ids{"u/early"}));
  const auto due = schedule().due(kT0 + 200, 100);
  EXPECT_EQ(ids_of(due), (Ids{"u/early", "v/mid", "w/mid-too"}));
  ASSERT_EQ(due.size(), 3u);
  EXPECT_EQ(due[0].deliver_at_ms, kT0 + 100);
  EXPECT_EQ(due[1].deliver_at_ms, kT0 + 200);
  EXPECT_LT(due[1].schedule_id, due[2].schedule_id);  // same time: scheduling order
  EXPECT_EQ(ids_of(schedule().due(kT0 + 10000, 100)),
            (Ids{"u/early", "v/mid", "w/mid-too", "u/late"}));
  EXPECT_EQ(schedule().scheduled_count(), 4u);
  EXPECT_EQ(inbox().state("u").head_seq, 0u);  // nothing appended by the schedule
}

TEST_P(ScheduleStoreContract, AScheduledMessageKeepsEveryField) {
  NewMessage m = msg("u", "ord-77", "order-77-track", 5000);
  m.data_json = R"({"big":12345678901234567890,"s":"\u00e9"})";
  m.priority = Priority::low;
  m.accepted_at_ms = kT0 - 7;
  ASSERT_EQ(schedule().schedule(m, kT0 + 60000), ScheduleResult::scheduled);
  const auto due = schedule().due(kT0 + 60000, 10);
  ASSERT_EQ(due.size(), 1u);
  const NewMessage& got = due[0].message;
  EXPECT_EQ(got.user, "u");
  EXPECT_EQ(got.id, "ord-77");
  EXPECT_EQ(got.event, "order.status");
  EXPECT_EQ(got.data_json, m.data_json);
  EXPECT_EQ(got.collapse_key, "order-77-track");
  EXPECT_EQ(got.ttl_ms, 5000);
  EXPECT_EQ(got.priority, Priority::low);
  EXPECT_EQ(got.trace_id, "trace-ord-77");
  EXPECT_EQ(got.accepted_at_ms, kT0 - 7);
  EXPECT_EQ(due[0].deliver_at_ms, kT0 + 60000);
}

TEST_P(ScheduleStoreContract, TheSameUserAndIdWhileScheduledIsADuplicate) {
  EXPECT_EQ(schedule().schedule(msg("u", "x"), kT0 + 100), ScheduleResult::scheduled);
  EXPECT_EQ(schedule().schedule(msg("u", "x"), kT0 + 100), ScheduleResult::duplicate);
  EXPECT_EQ(schedule().schedule(msg("u", "x"), kT0 + 5), ScheduleResult::duplicate);
  EXPECT_EQ(schedule().schedule(msg("v", "x"), kT0 + 100), ScheduleResult::scheduled);
  EXPECT_EQ(schedule().scheduled_count(), 2u);
  EXPECT_EQ(ids_of(schedule().due(kT0 + 100, 10)), (Ids{"u/x", "v/x"}));
}

TEST_P(ScheduleStoreContract, AnIdAppendedWithinTheDedupWindowIsADuplicate) {
  reopen(StorePolicy{.dedup_window_ms = 1000}, kDefaultMaxScheduled);
  append_one(inbox(), msg("u", "x"), kT0);
  EXPECT_EQ(schedule().schedule(accepted_at(msg("u", "x"), kT0 + 1000), kT0 + 5000),
            ScheduleResult::duplicate);
  EXPECT_EQ(schedule().schedule(accepted_at(msg("v", "x"), kT0 + 1000), kT0 + 5000),
            ScheduleResult::scheduled);
  EXPECT_EQ(schedule().schedule(accepted_at(msg("u", "x"), kT0 + 1001), kT0 + 5000),
            ScheduleResult::scheduled);
  EXPECT_EQ(schedule().scheduled_count(), 2u);
}

TEST_P(ScheduleStoreContract, RemoveDropsOnlyTheGivenMessagesAndIsIdempotent) {
  for (const char* id : {"a", "b", "c"}) {
    ASSERT_EQ(schedule().schedule(msg("u", id), kT0 + 100), ScheduleResult::scheduled);
  }
  const auto ids = schedule_ids_of(schedule().due(kT0 + 100, 10));
  ASSERT_EQ(ids.size(), 3u);
  const std::vector<std::uint64_t> gone = {ids[0], ids[2], ids[0], 987654321};
  schedule().remove(gone);
  EXPECT_EQ(ids_of(schedule().due(kT0 + 100, 10)), (Ids{"u/b"}));
  EXPECT_EQ(schedule().scheduled_count(), 1u);
  schedule().remove(gone);
  schedule().remove({});
  EXPECT_EQ(schedule().scheduled_count(), 1u);
  // Its (user, id) is free again: nothing was appended for it.
  EXPECT_EQ(schedule().schedule(msg("u", "a"), kT0 + 100), ScheduleResult::scheduled);
  EXPECT_EQ(schedule().scheduled_count(), 2u);
}

TEST_P(ScheduleStoreContract, AfterAppendAndRemoveTheInboxDedupAnswersForTheId) {
  ASSERT_EQ(schedule().schedule(msg("u", "x"), kT0 + 100), ScheduleResult::scheduled);
  auto due = schedule().due(kT0 + 100, 10);
  ASSERT_EQ(due.size(), 1u);
  due[0].message.from_schedule = true;  // as gateway::DelayedMessages appends it
  EXPECT_FALSE(append_one(inbox(), due[0].message, kT0 + 100).duplicate);
  // A crash before remove(): the next pass appends it again, as a duplicate.
  EXPECT_TRUE(append_one(inbox(), due[0].message, kT0 + 120).duplicate);
  schedule().remove(schedule_ids_of(due));
  EXPECT_EQ(schedule().scheduled_count(), 0u);
  EXPECT_EQ(schedule().schedule(accepted_at(msg("u", "x"), kT0 + 200), kT0 + 300),
            ScheduleResult::duplicate);
  EXPECT_EQ(retained(inbox(), "u"), (Seqs{1}));
}

TEST_P(ScheduleStoreContract, AnAppendOfAnIdStillScheduledIsADuplicateWithoutSeq) {
  ASSERT_EQ(schedule().schedule(msg("u", "x"), kT0 + 100), ScheduleResult::scheduled);
  // PROTOCOL.md 10: the same (user, id) while scheduled answers duplicate,
  // in a batch too, and nothing is appended for it.
  const auto batch = append_all(inbox(), {msg("u", "y"), msg("u", "x"), msg("v", "x")});
  EXPECT_FALSE(batch[0].duplicate);
  EXPECT_EQ(batch[0].seq, 1u);
  EXPECT_TRUE(batch[1].duplicate);
  EXPECT_TRUE(batch[1].scheduled);
  EXPECT_EQ(batch[1].seq, 0u);
  EXPECT_EQ(batch[1].id, "x");
  EXPECT_FALSE(batch[2].duplicate);  // another user's x
  EXPECT_FALSE(batch[2].scheduled);
  EXPECT_EQ(retained(inbox(), "u"), (Seqs{1}));

  // When due, the scheduled message itself is appended...
  auto due = schedule().due(kT0 + 100, 10);
  ASSERT_EQ(due.size(), 1u);
  due[0].message.from_schedule = true;
  const AppendResult appended = append_one(inbox(), due[0].message, kT0 + 100);
  EXPECT_FALSE(appended.duplicate);
  EXPECT_EQ(appended.seq, 2u);
  schedule().remove(schedule_ids_of(due));
  // ... and from then on the inbox's dedup answers, with its seq.
  const AppendResult again = append_one(inbox(), msg("u", "x"), kT0 + 200);
  EXPECT_TRUE(again.duplicate);
  EXPECT_FALSE(again.scheduled);
  EXPECT_EQ(again.seq, 2u);
}

TEST_P(ScheduleStoreContract, DueReturnsAtMostLimitEarliestFirst) {
  for (int i = 9; i >= 0; --i) {
    ASSERT_EQ(schedule().schedule(msg("u", "m" + std::to_string(i)), kT0 + i),
              ScheduleResult::scheduled);
  }
  EXPECT_EQ(ids_of(schedule().due(kT0 + 100, 3)), (Ids{"u/m0", "u/m1", "u/m2"}));
  EXPECT_EQ(ids_of(schedule().due(kT0 + 1, 3)), (Ids{"u/m0", "u/m1"}));
  EXPECT_EQ(ids_of(schedule().due(kT0 + 100, 0)), Ids{});
  EXPECT_EQ(schedule().due(kT0 + 100, 100).size(), 10u);
}

TEST_P(ScheduleStoreContract, ScheduleAnswersFullAtTheBoundUntilSomethingIsRemoved) {
  reopen(StorePolicy{}, 2);
  EXPECT_EQ(schedule().schedule(msg("u", "a"), kT0 + 100), ScheduleResult::scheduled);
  EXPECT_EQ(schedule().schedule(msg("u", "b"), kT0 + 200), ScheduleResult::scheduled);
  EXPECT_EQ(schedule().schedule(msg("u", "c"), kT0 + 300), ScheduleResult::full);
  EXPECT_EQ(schedule().schedule(msg("u", "a"), kT0 + 100), ScheduleResult::duplicate);
  EXPECT_EQ(schedule().scheduled_count(), 2u);
  EXPECT_EQ(ids_of(schedule().due(kT0 + 1000, 10)), (Ids{"u/a", "u/b"}));  // c held nothing
  schedule().remove(schedule_ids_of(schedule().due(kT0 + 100, 10)));
  EXPECT_EQ(schedule().schedule(msg("u", "c"), kT0 + 300), ScheduleResult::scheduled);
  EXPECT_EQ(ids_of(schedule().due(kT0 + 1000, 10)), (Ids{"u/b", "u/c"}));
}

TEST_P(ScheduleStoreContract, ConcurrentSchedulersGetDistinctScheduleIds) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const auto r = schedule().schedule(msg("u" + std::to_string(t), "m" + std::to_string(i)),
                                           kT0 + i);
        if (r != ScheduleResult::scheduled) ADD_FAILURE() << "thread " << t << " item " << i;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(schedule().scheduled_count(), 100u);
  const auto ids = schedule_ids_of(schedule().due(kT0 + 100, 1000));
  EXPECT_EQ(std::set<std::uint64_t>(ids.begin(), ids.end()).size(), 100u);
}

INSTANTIATE_TEST_SUITE_P(
    Backends, ScheduleStoreContract,
    ::testing::Values(
        ScheduleBackend{"memory",
                        [](const fs::path&, StorePolicy p, std::size_t max_scheduled) {
                          return opened(std::make_unique<MemoryInboxStore>(p, 100000, max_scheduled));
                        }},
        ScheduleBackend{"rocksdb_sync_always",
                        [](const fs::path& d, StorePolicy p, std::size_t max_scheduled) {
                          return opened(std::make_unique<RocksDbInboxStore>(
                              d.string(), p, SyncMode::always, 2ms, 1000, max_scheduled));
                        }},
        ScheduleBackend{"rocksdb_sync_batch",
                        [](const fs::path& d, StorePolicy p, std::size_t max_scheduled) {
                          return opened(std::make_unique<RocksDbInboxStore>(
                              d.string(), p, SyncMode::batch, 2ms, 1000, max_scheduled));
                        }},
        ScheduleBackend{"rocksdb_sync_none",
                        [](const fs::path& d, StorePolicy p, std::size_t max_scheduled) {
                          return opened(std::make_unique<RocksDbInboxStore>(
                              d.string(), p, SyncMode::none, 2ms, 1000, max_scheduled));
                        }},
        ScheduleBackend{"redis",
                        [](const fs::path&, StorePolicy p, std::size_t max_scheduled) {
                          return opened(open_redis(shared_redis().url(), p, max_scheduled));
                        }},
        ScheduleBackend{"redis_cluster",
                        [](const fs::path&, StorePolicy p, std::size_t max_scheduled) {
                          return opened(open_redis(shared_cluster().url(), p, max_scheduled));
                        }}),
    [](const ::testing::TestParamInfo<ScheduleBackend>& param_info) { return param_info.param.name; });

// ---- only the rocksdb backend: restarts, locking, sync modes ----

class RocksDbInboxStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<RocksDbInboxStore> open(StorePolicy policy = {}, SyncMode mode = SyncMode::always,
                                          std::size_t max_dead_letters = 1000) {
    return std::make_unique<RocksDbInboxStore>(path(), policy, mode, 2ms, max_dead_letters);
  }
  std::string path() const { return (dir_.path() / "db").string(); }

 private:
  TempDir dir_;
};

TEST_F(RocksDbInboxStoreTest, EverythingSurvivesCloseAndReopen) {
  const StorePolicy policy{.retention_max_messages = 3};
  std::string epoch;
  {
    auto store = open(policy);
    store->register_device("u", "phone", 0);
    store->commit_cursors(std::vector<CursorUpdate>{{"u", "phone", 2}, {"u", "laptop", 1}});
    for (int i = 1; i <= 5; ++i) append_one(*store, msg("u", "m" + std::to_string(i), i == 5 ? "k" : ""));
    append_one(*store, msg("v", "v1"));
    epoch = store->state("u").epoch;
    ASSERT_EQ(store->dead_letter_count(), 1u);  // seq 2: laptop had not acked it
  }
  auto store = open(policy);
  const InboxState st = store->state("u");
  EXPECT_EQ(st.epoch, epoch);
  EXPECT_EQ(st.head_seq, 5u);
  EXPECT_EQ(st.max_lost_seq, 2u);
  EXPECT_EQ(retained(*store, "u"), (Seqs{3, 4, 5}));
  EXPECT_EQ(store->get("u", 5)->collapse_key, "k");
  EXPECT_EQ(store->cursor("u", "phone"), 2u);
  EXPECT_EQ(store->cursor("u", "laptop"), 1u);
  EXPECT_EQ(store->cursors("u").size(), 2u);
  EXPECT_EQ(store->dead_letter_count(), 1u);
  ASSERT_EQ(store->dead_letters(0, 10).size(), 1u);
  EXPECT_EQ(store->dead_letters(0, 10)[0].seq, 2u);

  const auto dup = append_one(*store, msg("u", "m4"));  // dedup keys survive
  EXPECT_TRUE(dup.duplicate);
  EXPECT_EQ(dup.seq, 4u);
  EXPECT_EQ(append_one(*store, msg("u", "m6", "k")).seq, 6u);  // collapse survives: 5 leaves
  EXPECT_EQ(retained(*store, "u"), (Seqs{3, 4, 6}));
  append_one(*store, msg("u", "m7"));  // the retained count survives: 3 is trimmed
  EXPECT_EQ(retained(*store, "u"), (Seqs{4, 6, 7}));
  const auto dead = store->dead_letters(1, 10);  // the next dead-letter id survives
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].id, 2u);
  EXPECT_EQ(dead[0].seq, 3u);
  EXPECT_EQ(append_one(*store, msg("v", "v2")).seq, 2u);
}

TEST_F(RocksDbInboxStoreTest, TheExpiryIndexSurvivesReopen) {
  {
    auto store = open();
    append_one(*store, msg("u", "m1", {}, 1000));
    append_one(*store, msg("u", "m2", {}, 9000));
  }
  auto store = open();
  EXPECT_EQ(store->expire(kT0 + 1000, 10), 1u);
  EXPECT_EQ(retained(*store, "u"), (Seqs{2}));
  EXPECT_EQ(store->dead_letters(0, 10).at(0).reason, DeadReason::expired);
}

// Opens the store's database read-only with plain rocksdb, for what the
// store does not show: how many keys a family holds, the format mark.
class RawDatabase {
 public:
  explicit RawDatabase(const std::string& path, bool read_only = true) {
    std::vector<std::string> names;
    EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const auto& n : names) families.emplace_back(n, rocksdb::ColumnFamilyOptions());
    const auto s = read_only ? rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), path, families, &handles_, &db_)
                             : rocksdb::DB::Open(rocksdb::DBOptions(), path, families, &handles_, &db_);
    EXPECT_TRUE(s.ok()) << s.ToString();
    for (std::size_t i = 0; i < names.size(); ++i) by_name_[names[i]] = handles_[i];
  }
  ~RawDatabase() {
    for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
    delete db_;
  }
  std::size_t count(const std::string& family) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), by_name_.at(family)));
    std::size_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    return n;
  }
  std::string format() {
    std::string v;
    (void)db_->Get(rocksdb::ReadOptions(), by_name_.at(rocksdb::kDefaultColumnFamilyName), "format", &v);
    return v;
  }
  void set_format(const std::string& v) {
    EXPECT_TRUE(db_->Put(rocksdb::WriteOptions(), by_name_.at(rocksdb::kDefaultColumnFamilyName), "format", v).ok());
  }

 private:
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::map<std::string, rocksdb::ColumnFamilyHandle*> by_name_;
};

TEST_F(RocksDbInboxStoreTest, AGroupCommitWritesOneExpiryEntryPerRunOfAUser) {
  {
    auto store = open();
    std::vector<NewMessage> batch;
    for (int i = 0; i < 50; ++i) batch.push_back(msg(i < 40 ? "u" : "v", "m" + std::to_string(i), {}, 1000));
    // 1.5 s later than the rest: a run of its own.
    batch.push_back(msg("u", "late", {}, 2500));
    append_all(*store, batch);
  }
  EXPECT_EQ(RawDatabase(path()).count("expiry"), 3u);
  auto store = open();
  EXPECT_EQ(store->expire(kT0 + 1000, 100), 50u);
  EXPECT_EQ(store->expire(kT0 + 2500, 100), 1u);
  EXPECT_EQ(RawDatabase(path()).count("expiry"), 0u);
}

TEST_F(RocksDbInboxStoreTest, AGeneratedIdWritesNoDedupEntryUntilItsMessageLeaves) {
  const std::string id = generated_message_id();
  {
    auto store = open();
    NewMessage m = msg("u", id, {}, 1000);
    m.id_generated = true;
    append_one(*store, m);
    append_one(*store, msg("u", "chosen-by-the-publisher"));
  }
  EXPECT_EQ(RawDatabase(path()).count("dedup"), 1u);
  {
    auto store = open();
    EXPECT_EQ(store->generated_id_lookups(), 0u);
    // Sent back by its publisher: found among the retained messages.
    NewMessage again = msg("u", id);
    const auto r = append_one(*store, again);
    EXPECT_TRUE(r.duplicate);
    EXPECT_EQ(r.seq, 1u);
    EXPECT_EQ(store->generated_id_lookups(), 1u);
    append_one(*store, msg("u", "chosen-by-the-publisher"));  // has its entry: no lookup
    EXPECT_EQ(store->generated_id_lookups(), 1u);
    ASSERT_EQ(store->expire(kT0 + 1000, 10), 1u);
  }
  EXPECT_EQ(RawDatabase(path()).count("dedup"), 2u);  // left within the window
}

TEST_F(RocksDbInboxStoreTest, AFormatOneStoreIsReadAndMarkedTwo) {
  {
    auto store = open();
    append_one(*store, msg("u", "m1", {}, 1000));
  }
  RawDatabase(path(), /*read_only=*/false).set_format("1");
  {
    auto store = open();
    EXPECT_EQ(retained(*store, "u"), (Seqs{1}));
    EXPECT_EQ(store->expire(kT0 + 1000, 10), 1u);
  }
  EXPECT_EQ(RawDatabase(path()).format(), "2");
}

TEST_F(RocksDbInboxStoreTest, TheEpochOfAnEmptyInboxSurvivesReopen) {
  std::string epoch;
  {
    auto store = open();
    epoch = store->state("u").epoch;
    EXPECT_NE(store->state("v").epoch, epoch);  // one epoch per inbox
  }
  auto store = open();
  EXPECT_EQ(store->state("u").epoch, epoch);
  append_one(*store, msg("u", "m1"));
  EXPECT_EQ(store->state("u").epoch, epoch);
}

// Runs release_idle() as the housekeeper does (every 20 ms) over `ms`.
void release_idle_for(InboxStore& store, std::int64_t& now, std::int64_t ms) {
  for (const std::int64_t end = now + ms; now < end; now += 20) store.release_idle(now);
}

TEST_F(RocksDbInboxStoreTest, AnInboxUnusedForTwoSweepPeriodsLeavesTheCacheAndReloadsIntact) {
  auto store = open();
  store->register_device("idle", "phone", 0);
  append_one(*store, msg("idle", "m1"));
  append_one(*store, msg("idle", "m2"));
  store->commit_cursors(std::vector<CursorUpdate>{{"idle", "phone", 1}});
  const InboxState before = store->state("idle");
  append_one(*store, msg("busy", "b1"));
  ASSERT_EQ(store->cached_inboxes(), 2u);

  std::int64_t now = kT0;
  for (int i = 0; i < 10; ++i) {  // 10 s: "busy" is used all along
    release_idle_for(*store, now, 1000);
    store->read_after("busy", 0, 10, now);
  }
  EXPECT_EQ(store->cached_inboxes(), 1u);

  const InboxState after = store->state("idle");  // reloaded from disk
  EXPECT_EQ(after.epoch, before.epoch);
  EXPECT_EQ(after.head_seq, 2u);
  EXPECT_EQ(store->cursor("idle", "phone"), 1u);
  EXPECT_EQ(retained(*store, "idle"), (Seqs{1, 2}));
  EXPECT_EQ(append_one(*store, msg("idle", "m3")).seq, 3u);
  EXPECT_TRUE(append_one(*store, msg("idle", "m1")).duplicate);
  EXPECT_EQ(store->cached_inboxes(), 2u);
}

TEST_F(RocksDbInboxStoreTest, OnlyAppendsFillTheCacheAndReadsOfUncachedInboxesSeeTheDisk) {
  auto store = open();
  // What a device's first connect does: none of it is cached.
  const InboxState first = store->state("u");
  EXPECT_EQ(store->cursor("u", "phone"), std::nullopt);
  EXPECT_TRUE(store->cursors("u").empty());
  store->register_device("u", "phone", 0);
  EXPECT_TRUE(store->read_after("u", 0, 10, kT0).empty());
  EXPECT_EQ(store->cached_inboxes(), 0u);
  EXPECT_EQ(store->state("u").epoch, first.epoch);  // made once, read back from disk
  EXPECT_EQ(store->cursor("u", "phone"), 0u);

  // An append caches the inbox; acks of a cached inbox update it.
  EXPECT_EQ(append_one(*store, msg("u", "m1")).seq, 1u);
  EXPECT_EQ(store->cached_inboxes(), 1u);
  store->commit_cursors(std::vector<CursorUpdate>{{"u", "phone", 1}});
  EXPECT_EQ(store->cursor("u", "phone"), 1u);

  // Acks and registrations of an uncached inbox go to disk only, and are read back from there.
  store->register_device("v", "tablet", 0);
  store->commit_cursors(std::vector<CursorUpdate>{{"v", "tablet", 5}});
  EXPECT_EQ(store->cursor("v", "tablet"), 5u);
  EXPECT_EQ(store->cursors("v").size(), 1u);
  EXPECT_EQ(store->cached_inboxes(), 1u);
  EXPECT_EQ(append_one(*store, msg("v", "v1")).seq, 1u);
  EXPECT_EQ(store->cursor("v", "tablet"), 5u);  // the append's staging read the disk's cursor
  EXPECT_EQ(retained(*store, "u"), (Seqs{1}));
  EXPECT_EQ(store->state("u").head_seq, 1u);
}

TEST_F(RocksDbInboxStoreTest, ASecondOpenOfTheSamePathFailsWithAClearError) {
  auto first = open();
  try {
    auto second = open();
    FAIL() << "second open succeeded";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path()), std::string::npos) << what;
    EXPECT_NE(what.find("in use"), std::string::npos) << what;
  }
  append_one(*first, msg("u", "m1"));  // the first is unaffected
  EXPECT_EQ(retained(*first, "u"), (Seqs{1}));
}

TEST_F(RocksDbInboxStoreTest, APathThatIsAFileFailsWithAClearError) {
  { std::ofstream(path()) << "not a directory"; }
  EXPECT_THROW(open(), std::runtime_error);
}

TEST_F(RocksDbInboxStoreTest, EverySyncModeAppendsAndServesReads) {
  for (const SyncMode mode : {SyncMode::always, SyncMode::batch, SyncMode::none}) {
    SCOPED_TRACE(std::string(sync_mode_name(mode)));
    std::filesystem::remove_all(path());
    {
      auto store = open({}, mode);
      std::vector<NewMessage> batch;
      for (int i = 0; i < 20; ++i) batch.push_back(msg("u" + std::to_string(i % 3), "m" + std::to_string(i)));
      append_all(*store, batch);
      EXPECT_EQ(store->state("u0").head_seq, 7u);
      EXPECT_EQ(retained(*store, "u2").size(), 6u);
      EXPECT_TRUE(store->healthy());
    }
    auto store = open({}, mode);
    EXPECT_EQ(store->state("u1").head_seq, 7u);
  }
}

TEST_F(RocksDbInboxStoreTest, BatchModeServesConcurrentAppendersWithDistinctSeqs) {
  auto store = open({}, SyncMode::batch);
  std::vector<std::thread> threads;
  std::vector<std::vector<AppendResult>> results(4);
  for (std::size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        auto r = append_all(*store, {msg("u", "t" + std::to_string(t) + "-" + std::to_string(i))});
        results[t].push_back(r.at(0));
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::uint64_t> seqs;
  for (const auto& per_thread : results) {
    for (const auto& r : per_thread) seqs.insert(r.seq);
  }
  EXPECT_EQ(seqs.size(), 100u);
  EXPECT_EQ(*seqs.begin(), 1u);
  EXPECT_EQ(*seqs.rbegin(), 100u);
  EXPECT_EQ(retained(*store, "u").size(), 100u);
}

TEST_F(RocksDbInboxStoreTest, TheDeadLetterLogIsBoundedOldestDropped) {
  {
    auto store = open(StorePolicy{.retention_max_messages = 1}, SyncMode::none, 3);
    for (int i = 1; i <= 6; ++i) append_one(*store, msg("u", "m" + std::to_string(i)));
    EXPECT_EQ(store->dead_letter_count(), 5u);
  }
  auto store = open(StorePolicy{.retention_max_messages = 1}, SyncMode::none, 3);
  Seqs ids;
  for (const auto& d : store->dead_letters(0, 10)) ids.push_back(d.id);
  EXPECT_EQ(ids, (Seqs{3, 4, 5}));
  EXPECT_EQ(store->dead_letter_count(), 5u);
  // Found by seq while the log holds them, not once it dropped them.
  EXPECT_FALSE(store->dead_letter("u", 2).has_value());
  EXPECT_EQ(store->dead_letter("u", 3)->id, 3u);
  EXPECT_EQ(store->dead_letter("u", 5)->id, 5u);
}

TEST_F(RocksDbInboxStoreTest, DeadLettersFromBeforeTheIndexAreIndexedWhenOpened) {
  {
    auto store = open(StorePolicy{.retention_max_messages = 1});
    for (int i = 1; i <= 4; ++i) append_one(*store, msg("u", "m" + std::to_string(i)));
  }
  {
    // As a store written by a version without the index: neither entries nor marker.
    rocksdb::DB* raw = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path(), &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const auto& n : names) families.emplace_back(n, rocksdb::ColumnFamilyOptions());
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), path(), families, &handles, &raw).ok());
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i] == "dead_index") {
        ASSERT_TRUE(raw->DropColumnFamily(handles[i]).ok());
      }
      if (names[i] == "default") {
        ASSERT_TRUE(raw->Delete(rocksdb::WriteOptions(), handles[i], "dead_index_built").ok());
      }
    }
    for (auto* h : handles) ASSERT_TRUE(raw->DestroyColumnFamilyHandle(h).ok());
    delete raw;
  }
  auto store = open(StorePolicy{.retention_max_messages = 1});
  for (std::uint64_t seq = 1; seq <= 3; ++seq) EXPECT_EQ(store->dead_letter("u", seq)->id, seq);
  EXPECT_FALSE(store->dead_letter("u", 4).has_value());
}

TEST_F(RocksDbInboxStoreTest, UsersWhoseNamesContainNulBytesAreKeptApart) {
  using namespace std::string_literals;
  auto store = open();
  append_one(*store, msg("a"s, "x"));
  append_one(*store, msg("a\0b"s, "x"));
  append_one(*store, msg("a\0b"s, "y"));
  store->commit_cursors(std::vector<CursorUpdate>{{"a"s, "b\0c"s, 1}, {"a\0b"s, "c"s, 2}});
  EXPECT_EQ(retained(*store, "a"s), (Seqs{1}));
  EXPECT_EQ(retained(*store, "a\0b"s), (Seqs{1, 2}));
  EXPECT_EQ(store->cursors("a"s).size(), 1u);
  EXPECT_EQ(store->cursor("a\0b"s, "c"s), 2u);
  EXPECT_TRUE(append_one(*store, msg("a\0b"s, "x")).duplicate);
}

TEST_F(RocksDbInboxStoreTest, TheScheduleSurvivesCloseAndReopen) {
  std::uint64_t removed_id = 0;
  {
    auto store = open();
    ASSERT_EQ(store->schedule(msg("u", "a"), kT0 + 100), ScheduleResult::scheduled);
    ASSERT_EQ(store->schedule(msg("u", "b"), kT0 + 200), ScheduleResult::scheduled);
    ASSERT_EQ(store->schedule(msg("v", "c"), kT0 + 300), ScheduleResult::scheduled);
    removed_id = store->due(kT0 + 100, 1).at(0).schedule_id;
    const std::vector<std::uint64_t> gone = {removed_id};
    store->remove(gone);
  }
  {
    auto store = open();
    EXPECT_EQ(store->scheduled_count(), 2u);
    const auto due = store->due(kT0 + 1000, 10);
    EXPECT_EQ(ids_of(due), (Ids{"u/b", "v/c"}));
    ASSERT_EQ(due.size(), 2u);
    EXPECT_EQ(due[0].deliver_at_ms, kT0 + 200);
    EXPECT_EQ(due[1].message.data_json, R"({"id":"c"})");
    EXPECT_EQ(store->schedule(msg("u", "b"), kT0 + 900), ScheduleResult::duplicate);
    // The next schedule id survives: no id is handed out twice.
    ASSERT_EQ(store->schedule(msg("u", "d"), kT0 + 400), ScheduleResult::scheduled);
    const auto ids = schedule_ids_of(store->due(kT0 + 1000, 10));
    EXPECT_EQ(std::set<std::uint64_t>(ids.begin(), ids.end()).size(), 3u);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), removed_id), 0);
    const std::vector<std::uint64_t> first = {due[0].schedule_id};
    store->remove(first);
  }
  auto store = open();
  EXPECT_EQ(store->scheduled_count(), 2u);
  EXPECT_EQ(ids_of(store->due(kT0 + 1000, 10)), (Ids{"v/c", "u/d"}));
  EXPECT_EQ(store->schedule(msg("u", "b"), kT0 + 900), ScheduleResult::scheduled);
}

TEST_F(RocksDbInboxStoreTest, TheScheduleBoundCountsWhatWasHeldBeforeAReopen) {
  {
    auto store = std::make_unique<RocksDbInboxStore>(path(), StorePolicy{}, SyncMode::none, 2ms,
                                                     1000, 2);
    ASSERT_EQ(store->schedule(msg("u", "a"), kT0 + 100), ScheduleResult::scheduled);
    ASSERT_EQ(store->schedule(msg("u", "b"), kT0 + 100), ScheduleResult::scheduled);
  }
  auto store = std::make_unique<RocksDbInboxStore>(path(), StorePolicy{}, SyncMode::none, 2ms,
                                                   1000, 2);
  EXPECT_EQ(store->schedule(msg("u", "c"), kT0 + 100), ScheduleResult::full);
}

}  // namespace
}  // namespace herald::store
