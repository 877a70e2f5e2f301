#include "store/message_cache.hpp"

#include <gtest/gtest.h>

#include "core/clock.hpp"
#include "store/memory/memory_inbox_store.hpp"

namespace herald::store {
namespace {

// Counts reads that reach the backend.
class CountingStore final : public InboxStore {
 public:
  explicit CountingStore(StorePolicy p) : inner_(p) {}
  std::vector<AppendOutcome> append(std::span<const NewMessage> b, std::int64_t n) override { return inner_.append(b, n); }
  std::vector<MessagePtr> read_after(std::string_view u, std::uint64_t a, std::size_t l, std::int64_t n) override {
    ++reads;
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
  int reads = 0;

 private:
  MemoryInboxStore inner_;
};

NewMessage msg(std::string user, std::string id, std::string collapse = {}, std::int64_t ttl = 0) {
  NewMessage m;
  m.user = std::move(user);
  m.id = std::move(id);
  m.data_json = "\"" + m.id + "\"";
  m.collapse_key = std::move(collapse);
  m.ttl_ms = ttl;
  m.accepted_at_ms = 1000;
  return m;
}

std::vector<std::uint64_t> seqs(const std::vector<MessagePtr>& v) {
  std::vector<std::uint64_t> out;
  for (const auto& m : v) out.push_back(m->seq);
  return out;
}

TEST(MessageCache, ServesTheLivePathWithoutReadingTheBackend) {
  StorePolicy p;
  CountingStore backend(p);
  MessageCache cache(backend, p, 1 << 20);
  std::vector<NewMessage> batch{msg("u", "a"), msg("u", "b"), msg("u", "c")};
  cache.append(batch, 1000);
  EXPECT_EQ(seqs(cache.read_after("u", 0, 10, 1000)), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(seqs(cache.read_after("u", 2, 10, 1000)), (std::vector<std::uint64_t>{3}));
  EXPECT_EQ(backend.reads, 0);
  EXPECT_EQ(cache.get("u", 2)->data_json, "\"b\"");
  EXPECT_EQ(cache.stats().hits, 2u);
}

TEST(MessageCache, AnExpiredMessageIsAnsweredByTheBackendUntilItIsRemoved) {
  StorePolicy p;
  CountingStore backend(p);
  MessageCache cache(backend, p, 1 << 20);
  const std::int64_t now = unix_ms_now();
  NewMessage live = msg("u", "live", {}, 60000);
  NewMessage gone = msg("u", "gone", {}, 50);
  live.accepted_at_ms = gone.accepted_at_ms = now - 100;  // "gone" expired 50 ms ago
  std::vector<NewMessage> batch{gone, live};
  cache.append(batch, now - 100);
  ASSERT_NE(cache.get("u", 1), nullptr);  // the backend still holds it
  EXPECT_EQ(cache.expire(now, 100), 1u);
  EXPECT_EQ(cache.get("u", 1), nullptr);
  EXPECT_EQ(cache.get("u", 2)->data_json, "\"live\"");
}

TEST(MessageCache, MissesWhatItNeverSawAndAnswersLikeTheBackend) {
  StorePolicy p;
  CountingStore backend(p);
  std::vector<NewMessage> before{msg("u", "old1"), msg("u", "old2")};
  backend.append(before, 1000);
  MessageCache cache(backend, p, 1 << 20);
  std::vector<NewMessage> after{msg("u", "new")};
  cache.append(after, 1000);
  EXPECT_EQ(seqs(cache.read_after("u", 0, 10, 1000)), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(backend.reads, 1);
  EXPECT_EQ(seqs(cache.read_after("u", 2, 10, 1000)), (std::vector<std::uint64_t>{3}));
  EXPECT_EQ(backend.reads, 1);
}

TEST(MessageCache, DropsCollapsedAndTrimmedAndSkipsExpired) {
  StorePolicy p;
  p.retention_max_messages = 3;
  CountingStore backend(p);
  MessageCache cache(backend, p, 1 << 20);
  std::vector<NewMessage> batch{msg("u", "a", "k"), msg("u", "b"), msg("u", "c", "k"),
                                msg("u", "d", "", 50), msg("u", "e")};
  cache.append(batch, 1000);
  // a collapsed by c; b trimmed by the cap of 3; d expires at 1050.
  EXPECT_EQ(seqs(cache.read_after("u", 2, 10, 1000)), (std::vector<std::uint64_t>{3, 4, 5}));
  EXPECT_EQ(seqs(cache.read_after("u", 2, 10, 2000)), (std::vector<std::uint64_t>{3, 5}));
  EXPECT_EQ(seqs(backend.read_after("u", 0, 10, 1000)), (std::vector<std::uint64_t>{3, 4, 5}));
}

TEST(MessageCache, StaysWithinItsByteBudget) {
  StorePolicy p;
  CountingStore backend(p);
  MessageCache cache(backend, p, 64 * 4096);  // 4 KiB per shard
  for (int i = 0; i < 2000; ++i) {
    std::vector<NewMessage> one{msg("user" + std::to_string(i % 200), std::string(200, 'x') + std::to_string(i))};
    cache.append(one, 1000);
  }
  EXPECT_LE(cache.stats().bytes, 64u * 4096u);
  // Evicted history is still served, from the backend.
  EXPECT_EQ(cache.read_after("user7", 0, 100, 1000).size(), 10u);
}

}  // namespace
}  // namespace herald::store
