// The message cache's read of a user's tail: what every pump of a
// connection does (after a notify, after an ack). User ids as long as a
// UUID, past std::string's small buffer.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/ids.hpp"
#include "store/memory/memory_inbox_store.hpp"
#include "store/message_cache.hpp"

namespace {

using herald::store::MemoryInboxStore;
using herald::store::MessageCache;
using herald::store::NewMessage;
using herald::store::StorePolicy;

constexpr std::int64_t kNowMs = 1764000000000;

void BM_MessageCacheReadAfter(benchmark::State& state) {
  MemoryInboxStore backend{StorePolicy{}};
  MessageCache cache(backend, StorePolicy{}, 64u << 20);
  std::vector<std::string> users;
  std::vector<NewMessage> batch;
  for (int i = 0; i < 1000; ++i) {
    users.push_back(herald::random_hex(16) + "-" + herald::random_hex(10));  // 37 chars
    NewMessage m;
    m.user = users.back();
    m.id = "m-" + std::to_string(i);
    m.data_json = R"({"order":"77","status":"shipped"})";
    m.accepted_at_ms = kNowMs;
    batch.push_back(std::move(m));
  }
  cache.append(batch, kNowMs);
  std::size_t i = 0;
  for (auto _ : state) {
    // Past the last message: a pump that finds nothing new, as after most acks.
    benchmark::DoNotOptimize(cache.read_after(users[i++ % users.size()], 1, 64, kNowMs));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MessageCacheReadAfter);

}  // namespace
