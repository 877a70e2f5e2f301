#include "store/rocksdb/wal_syncer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

namespace herald::store {
namespace {

using namespace std::chrono_literals;

TEST(WalSyncer, WaitReturnsOnlyAfterASyncCoveringTheWrite) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> syncs{0};
  WalSyncer syncer(
      [&] {
        released.wait();
        ++syncs;
        return true;
      },
      0ms);
  const auto generation = syncer.note_write();
  auto waiter = std::async(std::launch::async, [&] { return syncer.wait_synced(generation); });
  EXPECT_EQ(waiter.wait_for(50ms), std::future_status::timeout);
  release.set_value();
  EXPECT_TRUE(waiter.get());
  EXPECT_GE(syncs.load(), 1);
}

TEST(WalSyncer, ManyWritersShareFewSyncsWithinTheInterval) {
  std::atomic<int> syncs{0};
  WalSyncer syncer(
      [&] {
        ++syncs;
        return true;
      },
      20ms);
  std::vector<std::thread> writers;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    writers.emplace_back([&] {
      for (int j = 0; j < 5; ++j) {
        if (syncer.wait_synced(syncer.note_write())) ++ok;
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(ok.load(), 40);
  EXPECT_LT(syncs.load(), 40);
}

TEST(WalSyncer, AFailedSyncFailsItsWaitersAndEveryLaterOne) {
  WalSyncer syncer([] { return false; }, 0ms);
  EXPECT_FALSE(syncer.wait_synced(syncer.note_write()));
  EXPECT_FALSE(syncer.healthy());
  EXPECT_FALSE(syncer.wait_synced(syncer.note_write()));
}

TEST(WalSyncer, NothingWrittenMeansNothingToWaitFor) {
  WalSyncer syncer([] { return true; }, 1000ms);
  EXPECT_EQ(syncer.last_write(), 0u);
  EXPECT_TRUE(syncer.wait_synced(syncer.last_write()));
}

TEST(WalSyncer, StoppingSyncsWhatIsPending) {
  std::atomic<int> syncs{0};
  {
    WalSyncer syncer(
        [&] {
          ++syncs;
          return true;
        },
        10000ms);
    (void)syncer.wait_synced(syncer.note_write());  // first sync at once
    (void)syncer.note_write();                       // the next would wait 10 s
  }
  EXPECT_EQ(syncs.load(), 2);
}

}  // namespace
}  // namespace herald::store
