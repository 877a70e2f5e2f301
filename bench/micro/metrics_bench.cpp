// Cost of the metric updates on the hot path, alone and contended.
#include <benchmark/benchmark.h>

#include <cmath>
#include <string>
#include <vector>

#include "metrics/registry.hpp"

namespace {

using herald::metrics::Counter;
using herald::metrics::Histogram;
using herald::metrics::Registry;

// Shared by the threads of one multi-threaded run: the contended case.
Counter shared_counter;
Histogram shared_histogram{herald::metrics::latency_buckets_seconds()};

// Latencies spread log-uniformly over 50 us .. 5 s, so every bucket is hit.
std::vector<double> sample_latencies() {
  std::vector<double> out(1024);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = 50e-6 * std::pow(1e5, static_cast<double>((i * 389) % out.size()) / static_cast<double>(out.size()));
  }
  return out;
}

void BM_CounterIncShared(benchmark::State& state) {
  for (auto _ : state) shared_counter.inc();
  state.SetItemsProcessed(state.iterations());
}

void BM_CounterIncPerThread(benchmark::State& state) {
  Counter own;
  for (auto _ : state) own.inc();
  benchmark::DoNotOptimize(own.value());
  state.SetItemsProcessed(state.iterations());
}

void BM_HistogramObserveShared(benchmark::State& state) {
  const std::vector<double> values = sample_latencies();
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 97;
  for (auto _ : state) shared_histogram.observe(values[i++ & 1023]);
  state.SetItemsProcessed(state.iterations());
}

void BM_RegistryExpose(benchmark::State& state) {
  // About what a server exposes: 40 families, a few series each, 10 histograms.
  Registry r;
  for (int f = 0; f < 30; ++f) {
    for (int s = 0; s < 4; ++s) {
      r.counter("herald_family_" + std::to_string(f) + "_total", "Help.", {{"reason", std::to_string(s)}}).inc(12345);
    }
  }
  for (int f = 0; f < 10; ++f) {
    r.histogram("herald_latency_" + std::to_string(f) + "_seconds", "Help.", herald::metrics::latency_buckets_seconds())
        .observe(0.003);
  }
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string text = r.expose();
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes) * state.iterations());
}

BENCHMARK(BM_CounterIncShared)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();
BENCHMARK(BM_CounterIncPerThread)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();
BENCHMARK(BM_HistogramObserveShared)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();
BENCHMARK(BM_RegistryExpose);

}  // namespace
