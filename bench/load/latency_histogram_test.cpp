#include "latency_histogram.hpp"

#include <gtest/gtest.h>

#include <random>

#include <boost/json.hpp>

namespace herald::bench {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TEST(LatencyHistogram, AnEmptyHistogramAnswersZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.quantile(0.99), nanoseconds(0));
  EXPECT_EQ(h.mean(), nanoseconds(0));
}

TEST(LatencyHistogram, QuantilesAreWithinTwoPercentOfTheTrueValueAcrossSixDecades) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(std::log(2e6), 1.5);  // around 2 ms, wide spread
  std::vector<std::int64_t> values;
  LatencyHistogram h;
  for (int i = 0; i < 100000; ++i) {
    const auto v = static_cast<std::int64_t>(std::clamp(dist(rng), 1e3, 1e10));
    values.push_back(v);
    h.record(nanoseconds(v));
  }
  std::sort(values.begin(), values.end());
  for (const double q : {0.5, 0.9, 0.99, 0.999}) {
    const double truth = static_cast<double>(values[static_cast<std::size_t>(std::ceil(q * values.size())) - 1]);
    const double got = static_cast<double>(h.quantile(q).count());
    EXPECT_NEAR(got, truth, truth * 0.02) << "q=" << q;
  }
  EXPECT_EQ(h.max(), nanoseconds(values.back()));
  EXPECT_EQ(h.quantile(1.0), nanoseconds(values.back()));
}

TEST(LatencyHistogram, MergeAddsCountsAndKeepsTheMax) {
  LatencyHistogram a, b;
  for (int i = 0; i < 90; ++i) a.record(microseconds(100));
  for (int i = 0; i < 10; ++i) b.record(milliseconds(50));
  a.merge(b);
  EXPECT_EQ(a.count(), 100u);
  EXPECT_EQ(a.max(), milliseconds(50));
  EXPECT_LE(a.quantile(0.9), microseconds(102));
  EXPECT_GE(a.quantile(0.91), milliseconds(49));
}

TEST(LatencyHistogram, HugeValuesLandInTheLastBucketWithoutOverflow) {
  LatencyHistogram h;
  h.record(std::chrono::hours(24 * 365));
  h.record(nanoseconds(-5));  // a clock step backwards counts as zero
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.quantile(1.0), std::chrono::hours(24 * 365));
}

TEST(LatencyHistogram, SurvivesAJsonRoundTripExactly) {
  LatencyHistogram h;
  for (int i = 1; i <= 1000; ++i) h.record(microseconds(i * 37));
  const auto back = LatencyHistogram::from_json(boost::json::parse(boost::json::serialize(h.to_json())));
  EXPECT_EQ(back.count(), h.count());
  EXPECT_EQ(back.max(), h.max());
  EXPECT_EQ(back.mean(), h.mean());
  for (const double q : {0.1, 0.5, 0.99}) EXPECT_EQ(back.quantile(q), h.quantile(q)) << "q=" << q;
  EXPECT_EQ(LatencyHistogram::from_json(boost::json::value("nonsense")).count(), 0u);
}

}  // namespace
}  // namespace herald::bench
