#include "core/token_bucket.hpp"

#include <gtest/gtest.h>

namespace herald {
namespace {

using std::chrono::milliseconds;
using Clock = TokenCount::Clock;

TEST(TokenCount, StartsFullSpendsTheBurstThenRefillsAtTheRate) {
  const TokenRate rate{10.0, 3.0};  // 10 per second, burst 3
  const Clock::time_point t0{};
  TokenCount c(rate, t0);
  EXPECT_TRUE(c.try_take(rate, t0));
  EXPECT_TRUE(c.try_take(rate, t0));
  EXPECT_TRUE(c.try_take(rate, t0));
  EXPECT_FALSE(c.try_take(rate, t0));
  EXPECT_NEAR(c.seconds_until_available(rate, t0), 0.1, 1e-9);
  EXPECT_FALSE(c.try_take(rate, t0 + milliseconds(99)));
  EXPECT_TRUE(c.try_take(rate, t0 + milliseconds(100)));
}

TEST(TokenCount, NeverHoldsMoreThanTheBurst) {
  const TokenRate rate{10.0, 2.0};
  const Clock::time_point t0{};
  TokenCount c(rate, t0);
  const auto later = t0 + std::chrono::seconds(60);
  EXPECT_TRUE(c.try_take(rate, later));
  EXPECT_TRUE(c.try_take(rate, later));
  EXPECT_FALSE(c.try_take(rate, later));
}

TEST(TokenCount, TimeGoingBackAddsNothing) {
  const TokenRate rate{1.0, 1.0};
  const Clock::time_point t0 = Clock::time_point{} + std::chrono::seconds(10);
  TokenCount c(rate, t0);
  EXPECT_TRUE(c.try_take(rate, t0));
  EXPECT_FALSE(c.try_take(rate, t0 - std::chrono::seconds(5)));
  EXPECT_FALSE(c.try_take(rate, t0 + milliseconds(500)));
  EXPECT_TRUE(c.try_take(rate, t0 + milliseconds(1000)));
}

// The state is one time point: a bucket costs no more than that.
TEST(TokenCount, IsOneTimePoint) { EXPECT_EQ(sizeof(TokenCount), sizeof(Clock::time_point)); }

TEST(TokenCount, ABurstBelowOneStillLetsOneTakeThroughPerInterval) {
  const TokenRate rate{0.5, 0.25};
  const Clock::time_point t0{};
  TokenCount c(rate, t0);
  EXPECT_TRUE(c.try_take(rate, t0));
  EXPECT_FALSE(c.try_take(rate, t0 + milliseconds(1999)));
  EXPECT_TRUE(c.try_take(rate, t0 + milliseconds(2000)));
}

TEST(TokenCount, AFractionalRateKeepsItsLongRunAverage) {
  const TokenRate rate{3.0, 1.0};
  const Clock::time_point t0{};
  TokenCount c(rate, t0);
  int taken = 0;
  for (int ms = 0; ms < 100000; ++ms) taken += c.try_take(rate, t0 + milliseconds(ms)) ? 1 : 0;
  EXPECT_NEAR(taken, 300, 1);
}

TEST(TokenBucket, CarriesItsOwnRate) {
  const Clock::time_point t0{};
  TokenBucket b(2.0, 1.0, t0);
  EXPECT_TRUE(b.try_take(t0));
  EXPECT_FALSE(b.try_take(t0));
  EXPECT_NEAR(b.seconds_until_available(t0), 0.5, 1e-9);
  EXPECT_TRUE(b.try_take(t0 + milliseconds(500)));
}

}  // namespace
}  // namespace herald
