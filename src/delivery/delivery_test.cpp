#include <gtest/gtest.h>

#include "delivery/attempt_ledger.hpp"
#include "delivery/inflight_window.hpp"
#include "delivery/resume_position.hpp"
#include "delivery/retry_schedule.hpp"

namespace herald::delivery {
namespace {
using std::chrono::milliseconds;

store::MessagePtr msg(std::uint64_t seq) {
  auto m = std::make_shared<store::StoredMessage>();
  m->seq = seq;
  return m;
}

TEST(RetrySchedule, FirstRedeliveryAfterTheAckTimeoutThenDoublesUntilTheCap) {
  RetryPolicy p;  // 2000 ack timeout, 500 initial, 10000 cap
  EXPECT_EQ(retry_delay(p, 2, 0.5), milliseconds(2000));
  EXPECT_EQ(retry_delay(p, 3, 0.5), milliseconds(1000));
  EXPECT_EQ(retry_delay(p, 4, 0.5), milliseconds(2000));
  EXPECT_EQ(retry_delay(p, 7, 0.5), milliseconds(10000));
  EXPECT_EQ(retry_delay(p, 40, 0.5), milliseconds(10000));
}

TEST(RetrySchedule, JitterStaysWithinTwentyPercent) {
  RetryPolicy p;
  EXPECT_EQ(retry_delay(p, 3, 0.0), milliseconds(800));
  EXPECT_EQ(retry_delay(p, 3, 0.999999), milliseconds(1200));
}

TEST(ResumePosition, LastSeqWinsWithMatchingOrNoEpoch) {
  store::InboxState inbox{"e1", 100, 0};
  auto d = decide_resume({50, "e1"}, inbox, 70, {});
  EXPECT_EQ(d.position, 50u);
  EXPECT_TRUE(d.recovered);
  d = decide_resume({50, std::nullopt}, inbox, 70, {});
  EXPECT_EQ(d.position, 50u);
}

TEST(ResumePosition, OtherEpochFallsBackToTheCursorAndIsNotRecovered) {
  store::InboxState inbox{"e2", 100, 0};
  auto d = decide_resume({50, "e1"}, inbox, 70, {});
  EXPECT_EQ(d.position, 70u);
  EXPECT_FALSE(d.recovered);
}

TEST(ResumePosition, NewDeviceStartsAtTheHighestCursorOfTheUser) {
  store::InboxState inbox{"e1", 100, 0};
  auto d = decide_resume({}, inbox, std::nullopt, {{"a", 30}, {"b", 60}});
  EXPECT_EQ(d.position, 60u);
  EXPECT_FALSE(d.known_device);
  EXPECT_TRUE(d.recovered);
}

TEST(ResumePosition, LossAfterThePositionIsNotRecovered) {
  store::InboxState inbox{"e1", 100, 40};
  EXPECT_FALSE(decide_resume({30, "e1"}, inbox, 10, {}).recovered);
  EXPECT_TRUE(decide_resume({40, "e1"}, inbox, 10, {}).recovered);
  // The device had acked the lost message before it left.
  EXPECT_TRUE(decide_resume({30, "e1"}, inbox, 45, {}).recovered);
}

TEST(ResumePosition, TheLostMarkNotTheCursorSaysWhetherAResumeBelowTheCursorIsWhole) {
  // 40 left before this device acked it; the device then acked up to 45.
  store::InboxState inbox{"e1", 100, 40};
  EXPECT_FALSE(decide_resume({30, "e1"}, inbox, 45, {}, 40).recovered);
  EXPECT_TRUE(decide_resume({40, "e1"}, inbox, 45, {}, 40).recovered);
  EXPECT_TRUE(decide_resume({}, inbox, 45, {}, 40).recovered);  // from the cursor
  // Another device missed 40; this one had acked it (its mark stays lower).
  EXPECT_TRUE(decide_resume({30, "e1"}, inbox, 45, {}, 0).recovered);
  // A mark does not help a resume in another epoch.
  EXPECT_FALSE(decide_resume({30, "e0"}, inbox, 45, {}, 0).recovered);
  // Nor a mark that was not raised (an older node removed 40 unacked): the
  // cursor below the loss still tells.
  EXPECT_FALSE(decide_resume({30, "e1"}, inbox, 35, {}, 0).recovered);
  // A mark above every loss of the inbox is left from an earlier epoch.
  store::InboxState fresh{"e2", 10, 0};
  EXPECT_TRUE(decide_resume({2, "e2"}, fresh, 5, {}, 3).recovered);
}

TEST(InflightWindow, CursorFollowsTheAckedPrefix) {
  InflightWindow w(10);  // max_inflight 3
  w.on_sent(msg(11), 0);
  w.on_sent(msg(13), 0);  // 12 was collapsed: never sent
  w.on_sent(msg(14), 0);
  EXPECT_FALSE(w.has_room(3));
  EXPECT_EQ(w.ack(13).size(), 1u);
  EXPECT_EQ(w.cursor(), 10u);
  EXPECT_EQ(w.ack(11).size(), 1u);
  EXPECT_EQ(w.cursor(), 13u);
  EXPECT_TRUE(w.ack(11).empty());  // already acked: ignored
  EXPECT_TRUE(w.ack(99).empty());  // never sent: ignored
  EXPECT_EQ(w.ack_upto(14).size(), 1u);
  EXPECT_EQ(w.cursor(), 14u);
}

TEST(InflightWindow, AckUptoCoversOnlyWhatWasSent) {
  InflightWindow w(0);
  w.on_sent(msg(1), 0);
  w.on_sent(msg(2), 0);
  EXPECT_EQ(w.ack_upto(100).size(), 2u);
  EXPECT_EQ(w.cursor(), 2u);
  EXPECT_EQ(w.last_sent(), 2u);
}

}  // namespace
}  // namespace herald::delivery

namespace herald::delivery {
namespace {

TEST(AttemptLedger, CountsSendsPerDeviceAcrossConnectionsUntilAcked) {
  AttemptLedger ledger;
  ledger.record_send("u", "a", 5);
  ledger.record_send("u", "a", 5);
  ledger.record_send("u", "b", 5);
  ledger.record_send("u", "a", 6);
  EXPECT_EQ(ledger.attempts("u", "a", 5), 2u);
  EXPECT_EQ(ledger.attempts("u", "b", 5), 1u);
  EXPECT_EQ(ledger.entries(), 3u);
  ledger.forget_upto("u", "a", 5);
  EXPECT_EQ(ledger.attempts("u", "a", 5), 2u);  // acked after a retry: remembered
  EXPECT_EQ(ledger.attempts("u", "a", 6), 1u);
  EXPECT_EQ(ledger.entries(), 2u);
}

TEST(AttemptLedger, RemembersTheCountOfAMessageAckedAfterRetries) {
  AttemptLedger ledger;
  ledger.record_send("u", "a", 1);  // sent once
  ledger.record_send("u", "a", 2);  // sent three times
  ledger.record_send("u", "a", 2);
  ledger.record_send("u", "a", 2);
  ledger.forget_upto("u", "a", 2);
  EXPECT_EQ(ledger.attempts("u", "a", 1), 0u);  // the API shows 1 for an acked message
  EXPECT_EQ(ledger.attempts("u", "a", 2), 3u);
  EXPECT_EQ(ledger.attempts("u", "b", 2), 0u);
  EXPECT_EQ(ledger.entries(), 0u);
}

TEST(AttemptLedger, KeepsOnlyTheLatestAckedRetriesOfAShard) {
  AttemptLedger ledger;
  const std::uint64_t n = AttemptLedger::kAckedRetriesPerShard + 10;
  for (std::uint64_t seq = 1; seq <= n; ++seq) {
    ledger.record_send("u", "a", seq);
    ledger.record_send("u", "a", seq);
  }
  ledger.forget_upto("u", "a", n);
  EXPECT_EQ(ledger.attempts("u", "a", 1), 0u);  // out, oldest first
  EXPECT_EQ(ledger.attempts("u", "a", 10), 0u);
  EXPECT_EQ(ledger.attempts("u", "a", 11), 2u);
  EXPECT_EQ(ledger.attempts("u", "a", n), 2u);
}

TEST(AttemptLedger, MarksAcksAboveTheCursorUntilTheCursorPasses) {
  AttemptLedger ledger;
  for (std::uint64_t seq = 1; seq <= 3; ++seq) ledger.record_send("u", "a", seq);
  ledger.mark_acked("u", "a", 2);
  EXPECT_TRUE(ledger.acked_above_cursor("u", "a", 2));
  EXPECT_FALSE(ledger.acked_above_cursor("u", "a", 1));
  EXPECT_FALSE(ledger.acked_above_cursor("u", "b", 2));
  EXPECT_EQ(ledger.attempts("u", "a", 2), 1u);  // the mark is not a send
  ledger.record_send("u", "a", 2);
  EXPECT_EQ(ledger.attempts("u", "a", 2), 2u);
  EXPECT_TRUE(ledger.acked_above_cursor("u", "a", 2));  // a send after the mark keeps it
  ledger.mark_acked("u", "a", 3);
  ledger.forget_upto("u", "a", 3);
  EXPECT_FALSE(ledger.acked_above_cursor("u", "a", 3));
  EXPECT_EQ(ledger.entries(), 0u);
}

TEST(AttemptLedger, StaysWithinItsBound) {
  AttemptLedger ledger(2);
  ledger.record_send("u", "a", 1);
  ledger.record_send("u", "a", 2);
  ledger.record_send("u", "a", 3);
  EXPECT_EQ(ledger.entries(), 2u);
  EXPECT_EQ(ledger.dropped(), 1u);
  ledger.record_send("u", "a", 2);  // existing entries still count
  EXPECT_EQ(ledger.attempts("u", "a", 2), 2u);
}

}  // namespace
}  // namespace herald::delivery
