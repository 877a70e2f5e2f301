#include "metrics/histogram.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace herald::metrics {
namespace {

TEST(Histogram, CountsAValueEqualToABoundInThatBucket) {
  Histogram h({1.0, 2.0, 4.0});
  h.observe(1.0);
  h.observe(1.5);
  h.observe(4.0);
  h.observe(9.0);
  h.observe(-3.0);
  EXPECT_EQ(h.cumulative_counts(), (std::vector<std::uint64_t>{2, 3, 4, 5}));
  EXPECT_EQ(h.count(), 5u);
  EXPECT_DOUBLE_EQ(h.sum(), 12.5);
}

TEST(Histogram, DropsNaNSoTheSumStaysUsable) {
  Histogram h({1.0});
  h.observe(std::numeric_limits<double>::quiet_NaN());
  h.observe(0.5);
  EXPECT_EQ(h.count(), 1u);
  EXPECT_DOUBLE_EQ(h.sum(), 0.5);
}

TEST(Histogram, RejectsUnsortedOrNonFiniteBounds) {
  EXPECT_THROW(Histogram({1.0, 1.0}), std::invalid_argument);
  EXPECT_THROW(Histogram({2.0, 1.0}), std::invalid_argument);
  EXPECT_THROW(Histogram({1.0, std::numeric_limits<double>::infinity()}), std::invalid_argument);
  EXPECT_THROW(Histogram({std::numeric_limits<double>::quiet_NaN()}), std::invalid_argument);
}

TEST(Histogram, QuantileInterpolatesLinearlyInsideTheBucket) {
  Histogram h({1.0, 2.0, 4.0});
  for (int i = 0; i < 4; ++i) h.observe(0.5);  // (0, 1]
  for (int i = 0; i < 4; ++i) h.observe(1.5);  // (1, 2]
  EXPECT_DOUBLE_EQ(h.quantile(0.5), 1.0);   // rank 4: the top of the first bucket
  EXPECT_DOUBLE_EQ(h.quantile(0.25), 0.5);  // rank 2: half way through (0, 1]
  EXPECT_DOUBLE_EQ(h.quantile(0.75), 1.5);  // rank 6: half way through (1, 2]
  EXPECT_DOUBLE_EQ(h.quantile(1.0), 2.0);
  EXPECT_DOUBLE_EQ(h.quantile(0.0), 0.0);   // the bottom of the first non-empty bucket
  EXPECT_DOUBLE_EQ(h.quantile(7.0), 2.0);   // clamped to 1
}

TEST(Histogram, QuantileStartsAtTheFirstNonEmptyBucket) {
  Histogram h({1.0, 2.0, 4.0});
  h.observe(3.0);
  h.observe(3.0);
  EXPECT_DOUBLE_EQ(h.quantile(0.0), 2.0);
  EXPECT_DOUBLE_EQ(h.quantile(0.5), 3.0);
}

TEST(Histogram, QuantileInTheInfBucketIsTheHighestFiniteBound) {
  Histogram h({1.0, 2.0});
  h.observe(100.0);
  EXPECT_DOUBLE_EQ(h.quantile(0.99), 2.0);
}

TEST(Histogram, QuantileOfAnEmptyHistogramIsNaN) {
  Histogram h(latency_buckets_seconds());
  EXPECT_TRUE(std::isnan(h.quantile(0.5)));
}

TEST(Histogram, QuantileEstimatesAUniformLatencySpreadWithinABucketWidth) {
  Histogram h(latency_buckets_seconds());
  for (int i = 0; i < 1000; ++i) h.observe(i / 1000.0);  // 0 .. 0.999 s
  EXPECT_NEAR(h.quantile(0.5), 0.5, 0.01);
  EXPECT_NEAR(h.quantile(0.9), 0.9, 0.01);
  EXPECT_NEAR(h.quantile(0.99), 0.99, 0.01);
}

TEST(Histogram, DefaultLatencyBucketsSpan100MicrosecondsTo10Seconds) {
  const std::vector<double> b = latency_buckets_seconds();
  ASSERT_FALSE(b.empty());
  EXPECT_DOUBLE_EQ(b.front(), 0.0001);
  EXPECT_DOUBLE_EQ(b.back(), 10.0);
  EXPECT_NO_THROW(Histogram::validate_bounds(b));
}

}  // namespace
}  // namespace herald::metrics
