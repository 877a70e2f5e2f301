// Parsing a publish request body: on the I/O thread for every publish.
#include <benchmark/benchmark.h>

#include <string>

#include "api/publish_request.hpp"

namespace {

std::string item(int i) {
  return R"({"user":"fan-)" + std::to_string(i) +
         R"(","event":"order.status","data":{"order":"77","state":"shipped","items":[1,2,3],"t":1764000000123,"pad":"xxxxxxxxxxxxxxxxxxxxxxxx"}})";
}

void BM_ParsePublishBody(benchmark::State& state) {
  const auto n = static_cast<int>(state.range(0));
  std::string body;
  if (n == 0) {
    body = item(1);
  } else {
    body = R"({"messages":[)";
    for (int i = 0; i < n; ++i) body += (i > 0 ? "," : "") + item(i);
    body += "]}";
  }
  const herald::api::PublishLimits limits;
  for (auto _ : state) {
    benchmark::DoNotOptimize(herald::api::parse_publish_body(body, n > 0, limits, "", 1764000000000));
  }
  state.SetItemsProcessed(state.iterations() * std::max(1, n));
}
// 0: one /v1/publish body; N: a /v1/publish/batch body of N messages.
BENCHMARK(BM_ParsePublishBody)->Arg(0)->Arg(64);

}  // namespace
