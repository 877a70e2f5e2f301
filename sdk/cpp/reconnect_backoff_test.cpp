#include "herald/reconnect_backoff.hpp"

#include <algorithm>
#include <random>

#include <gtest/gtest.h>

namespace herald::sdk {
namespace {
using namespace std::chrono_literals;
using std::chrono::milliseconds;

TEST(ReconnectBackoff, FullJitterDelaysStayWithinTheDoublingCap) {
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  ReconnectBackoff backoff(100ms, 1000ms, seed);
  const milliseconds caps[] = {100ms, 200ms, 400ms, 800ms, 1000ms, 1000ms, 1000ms};
  for (int round = 0; round < 200; ++round) {
    backoff.reset();
    for (auto cap : caps) {
      ASSERT_EQ(backoff.current_cap(), cap);
      const auto d = backoff.next();
      ASSERT_GE(d, 0ms);
      ASSERT_LE(d, cap);
    }
  }
}

TEST(ReconnectBackoff, ACeilingBoundsTheDrawButTheExponentStillGrows) {
  ReconnectBackoff backoff(100ms, 10000ms, 7);
  for (int i = 0; i < 6; ++i) {
    const auto cap = backoff.current_cap();
    ASSERT_LE(backoff.next(30ms), 30ms);
    ASSERT_EQ(backoff.current_cap(), std::min(cap * 2, milliseconds(10000)));
  }
}

TEST(ReconnectBackoff, DelaysSpreadOverTheWholeWindow) {
  ReconnectBackoff backoff(1000ms, 1000ms, 42);
  milliseconds lo = 1000ms, hi = 0ms;
  for (int i = 0; i < 2000; ++i) {
    const auto d = backoff.next();
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_LT(lo, 50ms);
  EXPECT_GT(hi, 950ms);
}

TEST(ReconnectBackoff, ResetStartsAgainFromInitial) {
  ReconnectBackoff backoff(10ms, 10000ms, 1);
  for (int i = 0; i < 20; ++i) backoff.next();
  EXPECT_EQ(backoff.current_cap(), 10000ms);
  backoff.reset();
  EXPECT_EQ(backoff.current_cap(), 10ms);
  EXPECT_LE(backoff.next(), 10ms);
}

TEST(ReconnectBackoff, ZeroInitialRetriesAtOnce) {
  ReconnectBackoff backoff(0ms, 1000ms, 1);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(backoff.next(), 0ms);
}

TEST(ReconnectBackoff, ManyFailuresDoNotOverflowTheCap) {
  ReconnectBackoff backoff(1ms, milliseconds(std::numeric_limits<std::int64_t>::max() / 4), 1);
  for (int i = 0; i < 200; ++i) ASSERT_GE(backoff.next(), 0ms);
  EXPECT_GT(backoff.current_cap(), 0ms);
}

TEST(ReconnectBackoff, UniformStaysWithinItsBound) {
  ReconnectBackoff backoff(10ms, 20ms, 7);
  for (int i = 0; i < 500; ++i) {
    const auto d = backoff.uniform(30ms);
    ASSERT_GE(d, 0ms);
    ASSERT_LE(d, 30ms);
  }
  EXPECT_EQ(backoff.uniform(0ms), 0ms);
  EXPECT_EQ(backoff.failures(), 0u);  // 1001 waits are not failures
}

TEST(RetryAfter, IsReadFromTheCloseReason) {
  EXPECT_EQ(parse_retry_after("retry_after=1500"), 1500ms);
  EXPECT_EQ(parse_retry_after("draining; retry_after=20"), 20ms);
  EXPECT_EQ(parse_retry_after("retry_after=250 more"), 250ms);
  EXPECT_EQ(parse_retry_after("draining"), std::nullopt);
  EXPECT_EQ(parse_retry_after("retry_after=soon"), std::nullopt);
  EXPECT_EQ(parse_retry_after("retry_after=-5"), std::nullopt);
  EXPECT_EQ(parse_retry_after(""), std::nullopt);
}

TEST(RetryAfter, GoingAwayBoundFallsBackToBackoffMax) {
  EXPECT_EQ(going_away_bound("retry_after=300", 10s), 300ms);
  EXPECT_EQ(going_away_bound("shutting down", 10s), 10s);
}

}  // namespace
}  // namespace herald::sdk
