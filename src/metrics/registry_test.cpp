#include "metrics/registry.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <thread>
#include <vector>

namespace herald::metrics {
namespace {

TEST(Registry, ExposesCountersWithLabelsExactly) {
  Registry r;
  r.counter("herald_frames_sent_total", "Frames sent.", {{"kind", "deliver"}}).inc(3);
  r.counter("herald_frames_sent_total", "Frames sent.", {{"kind", "ack"}}).inc();
  EXPECT_EQ(r.expose(),
            "# HELP herald_frames_sent_total Frames sent.\n"
            "# TYPE herald_frames_sent_total counter\n"
            "herald_frames_sent_total{kind=\"ack\"} 1\n"
            "herald_frames_sent_total{kind=\"deliver\"} 3\n");
}

TEST(Registry, ExposesGaugesAndFunctionsExactly) {
  Registry r;
  Gauge& g = r.gauge("herald_connections", "Open connections.");
  g.set(5);
  g.add(3);
  g.sub(10);
  r.gauge_fn("herald_load", "Load.", [] { return 1.5; }, {{"thread", "0"}});
  r.counter_fn("herald_bytes_total", "Bytes.", [] { return 7.0; });
  EXPECT_EQ(r.expose(),
            "# HELP herald_bytes_total Bytes.\n"
            "# TYPE herald_bytes_total counter\n"
            "herald_bytes_total 7\n"
            "# HELP herald_connections Open connections.\n"
            "# TYPE herald_connections gauge\n"
            "herald_connections -2\n"
            "# HELP herald_load Load.\n"
            "# TYPE herald_load gauge\n"
            "herald_load{thread=\"0\"} 1.5\n");
}

TEST(Registry, ExposesHistogramsAsCumulativeBucketsSumAndCount) {
  Registry r;
  Histogram& h = r.histogram("herald_publish_seconds", "Publish latency.", {0.25, 1, 2.5}, {{"store", "memory"}});
  h.observe(0.125);
  h.observe(0.25);
  h.observe(0.5);
  h.observe(4);
  EXPECT_EQ(r.expose(),
            "# HELP herald_publish_seconds Publish latency.\n"
            "# TYPE herald_publish_seconds histogram\n"
            "herald_publish_seconds_bucket{store=\"memory\",le=\"0.25\"} 2\n"
            "herald_publish_seconds_bucket{store=\"memory\",le=\"1\"} 3\n"
            "herald_publish_seconds_bucket{store=\"memory\",le=\"2.5\"} 3\n"
            "herald_publish_seconds_bucket{store=\"memory\",le=\"+Inf\"} 4\n"
            "herald_publish_seconds_sum{store=\"memory\"} 4.875\n"
            "herald_publish_seconds_count{store=\"memory\"} 4\n");
}

TEST(Registry, ExposesAHistogramWithoutLabels) {
  Registry r;
  r.histogram("h", "H.", {1}).observe(0.5);
  EXPECT_EQ(r.expose(),
            "# HELP h H.\n"
            "# TYPE h histogram\n"
            "h_bucket{le=\"1\"} 1\n"
            "h_bucket{le=\"+Inf\"} 1\n"
            "h_sum 0.5\n"
            "h_count 1\n");
}

TEST(Registry, EscapesLabelValuesAndHelpText) {
  Registry r;
  r.counter("c_total", "Back\\slash \"quoted\"\nsecond line.", {{"path", "a\\b\"c\nd"}}).inc();
  EXPECT_EQ(r.expose(),
            "# HELP c_total Back\\\\slash \"quoted\"\\nsecond line.\n"
            "# TYPE c_total counter\n"
            "c_total{path=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(Registry, ExposesNonFiniteFunctionValuesInTheFormatsSpelling) {
  Registry r;
  r.gauge_fn("a", "A.", [] { return HUGE_VAL; });
  r.gauge_fn("b", "B.", [] { return -HUGE_VAL; });
  r.gauge_fn("c", "C.", [] { return std::nan(""); });
  const std::string text = r.expose();
  EXPECT_NE(text.find("\na +Inf\n"), std::string::npos);
  EXPECT_NE(text.find("\nb -Inf\n"), std::string::npos);
  EXPECT_NE(text.find("\nc NaN\n"), std::string::npos);
}

TEST(Registry, SortsFamiliesByNameAndSeriesByLabelsWhateverTheRegistrationOrder) {
  Registry a;
  a.counter("z_total", "Z.").inc();
  a.gauge("m", "M.", {{"k", "2"}}).set(2);
  a.gauge("m", "M.", {{"k", "1"}}).set(1);
  Registry b;
  b.gauge("m", "M.", {{"k", "1"}}).set(1);
  b.counter("z_total", "Z.").inc();
  b.gauge("m", "M.", {{"k", "2"}}).set(2);
  EXPECT_EQ(a.expose(), b.expose());
  EXPECT_LT(a.expose().find("m{k=\"1\"}"), a.expose().find("m{k=\"2\"}"));
  EXPECT_LT(a.expose().find("# HELP m "), a.expose().find("# HELP z_total "));
}

TEST(Registry, LabelOrderDoesNotMakeANewSeries) {
  Registry r;
  Counter& a = r.counter("c_total", "C.", {{"b", "2"}, {"a", "1"}});
  Counter& b = r.counter("c_total", "C.", {{"a", "1"}, {"b", "2"}});
  EXPECT_EQ(&a, &b);
  a.inc();
  EXPECT_EQ(r.expose(), "# HELP c_total C.\n# TYPE c_total counter\nc_total{a=\"1\",b=\"2\"} 1\n");
}

TEST(Registry, RegistrationIsIdempotentForTheSameNameAndLabels) {
  Registry r;
  EXPECT_EQ(&r.counter("c_total", "C."), &r.counter("c_total", "C."));
  EXPECT_NE(&r.counter("c_total", "C.", {{"k", "v"}}), &r.counter("c_total", "C."));
  EXPECT_EQ(&r.gauge("g", "G."), &r.gauge("g", "G."));
  EXPECT_EQ(&r.histogram("h", "H.", {1, 2}), &r.histogram("h", "H.", {1, 2}));
}

TEST(Registry, RegisteringANameWithAnotherTypeThrows) {
  Registry r;
  r.counter("x", "X.");
  EXPECT_THROW(r.gauge("x", "X."), std::logic_error);
  EXPECT_THROW(r.histogram("x", "X.", {1}), std::logic_error);
  EXPECT_THROW(r.gauge_fn("x", "X.", [] { return 0.0; }), std::logic_error);
  r.gauge("y", "Y.");
  EXPECT_THROW(r.counter("y", "Y."), std::logic_error);
}

TEST(Registry, AHistogramWithOtherBoundsThrows) {
  Registry r;
  r.histogram("h", "H.", {1, 2}, {{"k", "a"}});
  EXPECT_THROW(r.histogram("h", "H.", {1, 3}, {{"k", "b"}}), std::logic_error);
}

TEST(Registry, FunctionSeriesCannotBeRegisteredTwiceOrClashWithObjects) {
  Registry r;
  r.gauge_fn("g", "G.", [] { return 1.0; });
  EXPECT_THROW(r.gauge_fn("g", "G.", [] { return 2.0; }), std::logic_error);
  EXPECT_THROW(r.gauge("g", "G."), std::logic_error);
  r.gauge("g", "G.", {{"k", "v"}});
  EXPECT_THROW(r.gauge_fn("g", "G.", [] { return 2.0; }, {{"k", "v"}}), std::logic_error);
  EXPECT_THROW(r.gauge_fn("e", "E.", nullptr), std::invalid_argument);
}

TEST(Registry, RejectsInvalidNamesAndReservedLabels) {
  Registry r;
  EXPECT_THROW(r.counter("", "E."), std::invalid_argument);
  EXPECT_THROW(r.counter("1abc", "E."), std::invalid_argument);
  EXPECT_THROW(r.counter("a-b", "E."), std::invalid_argument);
  EXPECT_NO_THROW(r.counter("ns:a_b9", "Colons are allowed in metric names."));
  EXPECT_THROW(r.counter("c", "E.", {{"a:b", "v"}}), std::invalid_argument);
  EXPECT_THROW(r.counter("c", "E.", {{"__name", "v"}}), std::invalid_argument);
  EXPECT_THROW(r.counter("c", "E.", {{"a", "1"}, {"a", "2"}}), std::invalid_argument);
  EXPECT_THROW(r.histogram("h", "E.", {1}, {{"le", "1"}}), std::invalid_argument);
  EXPECT_THROW(r.histogram("h", "E.", {2, 1}), std::invalid_argument);
  EXPECT_EQ(r.expose().find("# HELP h "), std::string::npos);  // nothing half-registered
}

TEST(Registry, TwoRegistriesAreIndependent) {
  Registry a;
  Registry b;
  a.counter("c_total", "C.").inc(5);
  EXPECT_EQ(b.counter("c_total", "C.").value(), 0u);
}

TEST(Registry, ConcurrentUpdatesFromFourThreadsSumCorrectly) {
  Registry r;
  constexpr int threads = 4;
  constexpr int per_thread = 100'000;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&r] {
      // Registration races too: every thread must get the same objects.
      Counter& c = r.counter("c_total", "C.");
      Gauge& g = r.gauge("g", "G.");
      Histogram& h = r.histogram("h", "H.", latency_buckets_seconds());
      for (int i = 0; i < per_thread; ++i) {
        c.inc();
        g.add(2);
        g.sub(1);
        h.observe(0.003);
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(r.counter("c_total", "C.").value(), std::uint64_t{threads} * per_thread);
  EXPECT_EQ(r.gauge("g", "G.").value(), std::int64_t{threads} * per_thread);
  Histogram& h = r.histogram("h", "H.", latency_buckets_seconds());
  EXPECT_EQ(h.count(), std::uint64_t{threads} * per_thread);
  EXPECT_NEAR(h.sum(), 0.003 * threads * per_thread, 1e-6);
}

}  // namespace
}  // namespace herald::metrics
