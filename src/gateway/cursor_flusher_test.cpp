#include "gateway/cursor_flusher.hpp"

#include <string>
#include <thread>

#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

#include "metrics/counter.hpp"
#include "store/memory/memory_inbox_store.hpp"
#include "transport/io_worker.hpp"

namespace herald::gateway {
namespace {

using namespace std::chrono_literals;

// The worker's thread is not started: the test is that thread, and runs
// the wheel and the io_context by hand.
class CursorFlusherTest : public ::testing::Test {
 protected:
  // "u0", "u1", ...; appended rather than "u" + ..., which GCC 12 at -O3
  // warns about (a -Wrestrict false positive).
  static std::string name(const char* prefix, int i) {
    std::string s(prefix);
    s += std::to_string(i);
    return s;
  }
  void add(int n, std::uint64_t cursor) {
    for (int i = 0; i < n; ++i) flusher.update(name("u", i), "d", cursor);
  }
  void fire_timer() {
    std::this_thread::sleep_for(interval + 5ms);
    worker.wheel().advance(timers::TimingWheel::Clock::now());
  }

  static constexpr auto interval = 10ms;
  store::MemoryInboxStore store{store::StorePolicy{}};
  transport::IoWorker worker{0, 1ms};
  metrics::Counter commits;
  CursorFlusher flusher{store, worker, interval, &commits};
};

TEST_F(CursorFlusherTest, TimedFlushWritesInChunksThatLetOtherHandlersRun) {
  add(300, 7);
  flusher.start();
  fire_timer();
  EXPECT_EQ(commits.value(), CursorFlusher::kChunk);  // the first chunk, then a posted handler
  EXPECT_EQ(flusher.pending(), 300 - CursorFlusher::kChunk);

  bool other_ran = false;
  boost::asio::post(worker.context(), [&] { other_ran = true; });
  ASSERT_EQ(worker.context().run_one(), 1u);  // the next chunk
  EXPECT_EQ(commits.value(), 2 * CursorFlusher::kChunk);
  EXPECT_FALSE(other_ran);
  ASSERT_EQ(worker.context().run_one(), 1u);  // the handler queued behind it
  EXPECT_TRUE(other_ran);
  worker.context().poll();  // the rest
  EXPECT_EQ(commits.value(), 300u);
  EXPECT_EQ(flusher.pending(), 0u);
  EXPECT_EQ(store.cursor("u0", "d"), 7u);
  EXPECT_EQ(store.cursor("u299", "d"), 7u);
}

TEST_F(CursorFlusherTest, AcksDuringARoundAreWrittenByTheNextTick) {
  add(2 * static_cast<int>(CursorFlusher::kChunk), 1);
  flusher.start();
  fire_timer();
  // The round covers what was pending at the tick; these come in meanwhile.
  for (int i = 0; i < 3000; ++i) flusher.update(name("late", i), "d", 2);
  worker.context().poll();
  EXPECT_EQ(commits.value(), 2 * CursorFlusher::kChunk);
  EXPECT_EQ(flusher.pending(), 3000u);
  fire_timer();
  worker.context().restart();  // the io_context stopped when it ran out of handlers
  worker.context().poll();
  EXPECT_EQ(flusher.pending(), 0u);
  EXPECT_EQ(store.cursor("late2999", "d"), 2u);
}

TEST_F(CursorFlusherTest, FlushWritesEverythingAtOnce) {
  add(1000, 3);
  flusher.flush();
  EXPECT_EQ(commits.value(), 1000u);
  EXPECT_EQ(flusher.pending(), 0u);
  EXPECT_EQ(store.cursor("u999", "d"), 3u);
  // A cursor never moves backwards in the batch either.
  flusher.update("u1", "d", 9);
  flusher.update("u1", "d", 4);
  flusher.flush();
  EXPECT_EQ(store.cursor("u1", "d"), 9u);
}

// Acks above a gap are the ledger's business for the embedded stores
// (redis keeps them itself: tests/e2e/test_delivery.py AckAboveGapRedisTest).
TEST_F(CursorFlusherTest, AckMarksAreNotHeldForAStoreThatDoesNotKeepThem) {
  flusher.mark_acked("u", "d", 5);
  EXPECT_EQ(flusher.pending_marks(), 0u);
}

}  // namespace
}  // namespace herald::gateway
