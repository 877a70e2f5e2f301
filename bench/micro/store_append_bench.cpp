// Append throughput of the rocksdb inbox store: one group commit of `batch`
// messages per iteration (as the StoreWorker hands them over), under each
// sync mode. Messages go to 1000 users, ~200 bytes of data each; a fresh
// database in a temporary directory per run.
#include <benchmark/benchmark.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "core/ids.hpp"
#include "store/rocksdb/rocksdb_inbox_store.hpp"

namespace {

using herald::store::NewMessage;
using herald::store::RocksDbInboxStore;
using herald::store::StorePolicy;
using herald::store::SyncMode;

constexpr std::int64_t kNowMs = 1764000000000;

void BM_RocksDbAppend(benchmark::State& state) {
  const auto batch_size = static_cast<std::size_t>(state.range(0));
  const auto mode = static_cast<SyncMode>(state.range(1));
  const auto dir = std::filesystem::temp_directory_path() / ("herald-append-bench-" + herald::random_hex(8));
  {
    RocksDbInboxStore store(dir.string(), StorePolicy{}, mode, std::chrono::milliseconds(5));
    std::vector<NewMessage> batch(batch_size);
    for (auto& m : batch) {
      m.event = "order.status";
      m.data_json = R"({"order":"77","status":"shipped","note":")" + std::string(140, 'x') + "\"}";
      m.accepted_at_ms = kNowMs;
    }
    std::uint64_t n = 0;
    for (auto _ : state) {
      for (auto& m : batch) {
        m.user = "user-" + std::to_string(n % 1000);
        m.id = "msg-" + std::to_string(n++);
      }
      auto out = store.append(batch, kNowMs);
      benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch_size));
    state.SetLabel(std::string(herald::store::sync_mode_name(mode)));
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// sync: 0 always, 1 batch (5 ms), 2 none (SyncMode order).
BENCHMARK(BM_RocksDbAppend)
    ->ArgsProduct({{1, 16, 256}, {0, 1, 2}})
    ->ArgNames({"batch", "sync"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
