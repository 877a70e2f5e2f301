// TimingWheel throughput with 100k and 1M pending timers, and its memory per timer.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "timers/timing_wheel.hpp"

namespace {

using herald::timers::TimerId;
using herald::timers::TimingWheel;
using namespace std::chrono_literals;
using Clock = TimingWheel::Clock;

const Clock::time_point t0 = Clock::time_point{} + 1000h;
constexpr std::size_t batch = 4096;  // operations between untimed clean-ups

// A connection timer's typical capture: two pointers and a generation.
struct Noop {
  void* owner;
  void* connection;
  std::uint64_t generation;
  void operator()() const { benchmark::DoNotOptimize(owner); }
};

// Deadlines spread over 1..60 s: the heartbeat/idle range, never due during the run.
std::vector<Clock::time_point> random_deadlines(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> ms(1'000, 60'000);
  std::vector<Clock::time_point> out(n);
  for (auto& d : out) d = t0 + std::chrono::milliseconds(ms(rng));
  return out;
}

void report_memory(benchmark::State& state, const TimingWheel& wheel) {
  state.counters["bytes_per_timer"] = static_cast<double>(TimingWheel::bytes_per_timer());
  // What the wheel really holds per pending timer, slab growth slack included.
  state.counters["bytes_per_pending"] =
      static_cast<double>(wheel.memory_bytes()) / static_cast<double>(std::max<std::size_t>(wheel.pending(), 1));
}

void BM_TimingWheelSchedule(benchmark::State& state) {
  const auto pending = static_cast<std::size_t>(state.range(0));
  TimingWheel wheel(10ms, 4096, t0);
  for (const auto when : random_deadlines(pending, 1)) wheel.schedule(when, Noop{});
  const std::vector<Clock::time_point> deadlines = random_deadlines(batch, 2);
  std::vector<TimerId> ids(batch);
  std::size_t k = 0;
  for (auto _ : state) {
    ids[k] = wheel.schedule(deadlines[k], Noop{});
    if (++k == batch) {
      state.PauseTiming();
      for (const TimerId id : ids) wheel.cancel(id);
      k = 0;
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations());
  report_memory(state, wheel);
}

void BM_TimingWheelCancel(benchmark::State& state) {
  const auto pending = static_cast<std::size_t>(state.range(0));
  TimingWheel wheel(10ms, 4096, t0);
  const std::vector<Clock::time_point> deadlines = random_deadlines(pending, 1);
  std::vector<TimerId> ids(pending);
  for (std::size_t i = 0; i < pending; ++i) ids[i] = wheel.schedule(deadlines[i], Noop{});
  // Cancel in random order: nodes are scattered in memory, as in a real wheel.
  std::vector<std::uint32_t> order(pending);
  std::iota(order.begin(), order.end(), 0u);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(3));
  std::size_t k = 0;
  std::size_t batch_start = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(wheel.cancel(ids[order[k]]));
    if (++k - batch_start == batch || k == pending) {
      state.PauseTiming();
      for (std::size_t j = batch_start; j < k; ++j) ids[order[j]] = wheel.schedule(deadlines[order[j]], Noop{});
      if (k == pending) k = 0;
      batch_start = k;
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations());
  report_memory(state, wheel);
}

// Steady state of a server: `pending` timers spread evenly over a horizon;
// each iteration is one 10 ms tick, and every timer that fires re-arms itself
// one horizon later (a heartbeat). Items are fired-and-rescheduled timers.
struct Rearm {
  TimingWheel* wheel;
  std::uint64_t* fired;
  Clock::duration horizon;
  void operator()() const {
    ++*fired;
    wheel->schedule(wheel->now() + horizon, *this);
  }
};

void BM_TimingWheelScheduleExpire(benchmark::State& state) {
  const auto pending = static_cast<std::size_t>(state.range(0));
  const Clock::duration horizon = std::chrono::seconds(state.range(1));
  TimingWheel wheel(10ms, 4096, t0);
  std::uint64_t fired = 0;
  std::mt19937_64 rng(4);
  std::uniform_int_distribution<std::int64_t> offset(1, horizon.count());
  for (std::size_t i = 0; i < pending; ++i) {
    wheel.schedule(t0 + Clock::duration(offset(rng)), Rearm{&wheel, &fired, horizon});
  }
  Clock::time_point now = t0;
  for (auto _ : state) {
    now += 10ms;
    benchmark::DoNotOptimize(wheel.advance(now));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(fired));
  state.counters["fired_per_tick"] =
      static_cast<double>(fired) / static_cast<double>(std::max<benchmark::IterationCount>(state.iterations(), 1));
  report_memory(state, wheel);
}

BENCHMARK(BM_TimingWheelSchedule)->Arg(100'000)->Arg(1'000'000);
BENCHMARK(BM_TimingWheelCancel)->Arg(100'000)->Arg(1'000'000);
// 30 s fits in one revolution (41 s); 120 s makes every slot hold three rounds.
BENCHMARK(BM_TimingWheelScheduleExpire)->Args({100'000, 30})->Args({1'000'000, 30})->Args({1'000'000, 120});

}  // namespace
