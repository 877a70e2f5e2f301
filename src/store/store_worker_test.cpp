#include "store/store_worker.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>

#include "store/memory/memory_inbox_store.hpp"

namespace herald::store {
namespace {

// Holds every append until released, so a test can fill the queue.
class GatedStore final : public InboxStore {
 public:
  std::vector<AppendOutcome> append(std::span<const NewMessage> batch, std::int64_t now) override {
    {
      std::unique_lock lock(mu_);
      ++entered_;
      cv_.notify_all();
      cv_.wait(lock, [this] { return open_; });
    }
    batches_.push_back(batch.size());
    return inner_.append(batch, now);
  }
  void wait_entered(int n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return entered_ >= n; });
  }
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  std::vector<MessagePtr> read_after(std::string_view u, std::uint64_t a, std::size_t l, std::int64_t n) override {
    return inner_.read_after(u, a, l, n);
  }
  MessagePtr get(std::string_view u, std::uint64_t s) override { return inner_.get(u, s); }
  InboxState state(std::string_view u) override { return inner_.state(u); }
  std::optional<std::uint64_t> cursor(std::string_view u, std::string_view d) override { return inner_.cursor(u, d); }
  std::optional<std::uint64_t> lost_mark(std::string_view u, std::string_view d) override { return inner_.lost_mark(u, d); }
  std::vector<DeviceCursor> cursors(std::string_view u) override { return inner_.cursors(u); }
  void register_device(std::string_view u, std::string_view d, std::uint64_t c) override { inner_.register_device(u, d, c); }
  void commit_cursors(std::span<const CursorUpdate> c) override { inner_.commit_cursors(c); }
  std::size_t expire(std::int64_t n, std::size_t b) override { return inner_.expire(n, b); }
  std::vector<DeadLetter> dead_letters(std::uint64_t a, std::size_t l) override { return inner_.dead_letters(a, l); }
  std::uint64_t dead_letter_count() override { return inner_.dead_letter_count(); }
  std::optional<DeadLetter> dead_letter(std::string_view u, std::uint64_t s) override { return inner_.dead_letter(u, s); }
  BacklogSlice scan_backlog(std::string_view p, std::size_t n) override { return inner_.scan_backlog(p, n); }
  bool healthy() override { return true; }

  std::vector<std::size_t> batches_;

 private:
  MemoryInboxStore inner_{StorePolicy{}};
  std::mutex mu_;
  std::condition_variable cv_;
  int entered_ = 0;
  bool open_ = false;
};

std::vector<NewMessage> messages(std::size_t n, Priority p, const std::string& user = "u") {
  std::vector<NewMessage> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    out[i].user = user;
    out[i].id = user + std::to_string(i) + std::to_string(static_cast<int>(p)) + std::to_string(rand());
    out[i].data_json = "1";
    out[i].priority = p;
  }
  return out;
}

TEST(StoreWorker, ShedsLowThenNormalWhileHighStillFits) {
  GatedStore store;
  StoreWorker worker(store, 10);
  ASSERT_TRUE(worker.submit(messages(1, Priority::normal), [](auto) {}));
  store.wait_entered(1);  // the one being committed still counts until done
  EXPECT_TRUE(worker.submit(messages(4, Priority::low), [](auto) {}));     // 5 <= 5
  EXPECT_FALSE(worker.submit(messages(2, Priority::low), [](auto) {}));    // 7 > 5
  EXPECT_TRUE(worker.submit(messages(3, Priority::normal), [](auto) {}));  // 8 <= 8
  EXPECT_FALSE(worker.submit(messages(1, Priority::normal), [](auto) {})); // 9 > 8
  EXPECT_TRUE(worker.submit(messages(2, Priority::high), [](auto) {}));    // 10 <= 10
  EXPECT_FALSE(worker.submit(messages(1, Priority::high), [](auto) {}));   // 11 > 10
  const auto stats = worker.stats();
  EXPECT_EQ(stats.shed[0], 1u);  // messages, not requests
  EXPECT_EQ(stats.shed[1], 1u);
  EXPECT_EQ(stats.shed[2], 2u);
  store.open();
  worker.stop();
}

TEST(StoreWorker, AMixedBatchLosesOnlyTheMessagesItsQueueShareIsFullFor) {
  GatedStore store;
  StoreWorker worker(store, 10);
  ASSERT_TRUE(worker.submit(messages(4, Priority::normal), [](auto) {}));
  store.wait_entered(1);
  // 4 queued: 1 high fits (5 <= 10), then 2 normal (7 <= 8), then 2 low
  // do not (9 > 5), wherever they stand in the batch.
  std::vector<NewMessage> batch = messages(1, Priority::low, "l");
  for (auto& m : messages(1, Priority::high, "h")) batch.push_back(std::move(m));
  for (auto& m : messages(2, Priority::normal, "n")) batch.push_back(std::move(m));
  for (auto& m : messages(1, Priority::low, "l")) batch.push_back(std::move(m));
  std::promise<std::vector<AppendOutcome>> outcomes;
  ASSERT_TRUE(worker.submit(std::move(batch), [&](std::vector<AppendOutcome> r) { outcomes.set_value(std::move(r)); }));
  EXPECT_EQ(worker.queued_messages(), 7u);
  // Only low messages, and the queue too full for them: refused whole.
  EXPECT_FALSE(worker.submit(messages(1, Priority::low), [](auto) {}));
  store.open();
  const auto r = outcomes.get_future().get();
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(std::get<errc>(r[0]), errc::overloaded);
  EXPECT_EQ(std::get<AppendResult>(r[1]).seq, 1u);  // user h
  EXPECT_EQ(std::get<AppendResult>(r[2]).seq, 1u);  // user n
  EXPECT_EQ(std::get<AppendResult>(r[3]).seq, 2u);
  EXPECT_EQ(std::get<errc>(r[4]), errc::overloaded);
  worker.stop();
  EXPECT_EQ(store.batches_, (std::vector<std::size_t>{4, 3}));
  const auto stats = worker.stats();
  EXPECT_EQ(stats.shed[0], 0u);
  EXPECT_EQ(stats.shed[1], 0u);
  EXPECT_EQ(stats.shed[2], 3u);
}

TEST(StoreWorker, CommitsEverythingQueuedTogetherInArrivalOrder) {
  GatedStore store;
  StoreWorker worker(store, 1000);
  std::promise<void> first_done;
  ASSERT_TRUE(worker.submit(messages(1, Priority::low, "a"), [&](auto) { first_done.set_value(); }));
  store.wait_entered(1);
  std::vector<std::uint64_t> seqs;
  std::mutex mu;
  for (Priority p : {Priority::low, Priority::high, Priority::normal}) {
    ASSERT_TRUE(worker.submit(messages(1, p, "a"), [&, p](std::vector<AppendOutcome> r) {
      std::lock_guard lock(mu);
      seqs.push_back(std::get<AppendResult>(r[0]).seq * 10 + static_cast<std::uint64_t>(p));
    }));
  }
  store.open();
  first_done.get_future().wait();
  worker.stop();
  // One commit for the three queued requests; seqs in arrival order.
  EXPECT_EQ(store.batches_, (std::vector<std::size_t>{1, 3}));
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{22, 30, 41}));
}

}  // namespace
}  // namespace herald::store
