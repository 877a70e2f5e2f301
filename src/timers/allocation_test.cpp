// Counts heap allocations by replacing the global operator new for the whole
// timers_test binary; the other tests are unaffected (it still allocates).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "timers/inplace_callback.hpp"
#include "timers/timing_wheel.hpp"

namespace {
std::atomic<std::size_t> allocations{0};  // process-wide by nature: operator new is
}  // namespace

// Not inlinable: GCC would otherwise see free() applied to what it believes
// came from the default operator new, and warn (-Wmismatched-new-delete).
[[gnu::noinline]] void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace herald::timers {
namespace {

using namespace std::chrono_literals;

TEST(InplaceCallback, StoresAFourPointerCaptureWithoutAllocating) {
  void* a = nullptr;
  void* b = nullptr;
  std::uint64_t generation = 7;
  int runs = 0;
  const std::size_t before = allocations.load();
  {
    InplaceCallback cb([a, b, generation, &runs] { runs += (a == b) && generation == 7; });
    InplaceCallback moved = std::move(cb);
    moved();
  }
  const std::size_t after = allocations.load();
  EXPECT_EQ(after, before);
  EXPECT_EQ(runs, 1);
}

TEST(TimingWheel, SchedulesCancelsAndFiresWithoutAllocatingAfterWarmUp) {
  const auto t0 = TimingWheel::Clock::time_point{} + 1h;
  TimingWheel wheel(10ms, 256, t0);
  std::vector<TimerId> ids(10'000);
  int fired = 0;
  auto round = [&](TimingWheel::Clock::time_point base) {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      // 24 bytes of captures, as a connection timer would carry.
      ids[i] = wheel.schedule(base + std::chrono::milliseconds(i % 5000),
                              [&fired, i, generation = std::uint64_t{1}] { fired += static_cast<int>(i % 2 * generation); });
    }
    for (std::size_t i = 0; i < ids.size(); i += 2) wheel.cancel(ids[i]);
    wheel.advance(base + 10s);  // 10'000 ms > one revolution: the long-gap path too
    wheel.advance(base + 10s + 2560ms);
  };
  round(t0);  // warm-up: the slab and the scratch space grow to their peak
  const std::size_t before = allocations.load();
  round(t0 + 20s);
  const std::size_t after = allocations.load();  // read before gtest's macros allocate
  EXPECT_EQ(after, before);
  EXPECT_EQ(fired, 10'000);
  EXPECT_EQ(wheel.pending(), 0u);
}

}  // namespace
}  // namespace herald::timers
