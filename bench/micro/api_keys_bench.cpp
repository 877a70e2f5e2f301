// The API key check, done once per HTTP API request (every publish).
#include <benchmark/benchmark.h>

#include "auth/api_keys.hpp"

namespace {

void BM_CheckAuthorization(benchmark::State& state) {
  const herald::auth::ApiKeys keys({"k-3f9a1c2e7b5d4068a1b2c3d4e5f60718", "k-other"});
  const std::string header = "Bearer k-3f9a1c2e7b5d4068a1b2c3d4e5f60718";
  for (auto _ : state) benchmark::DoNotOptimize(keys.check_authorization(header));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CheckAuthorization);

}  // namespace
