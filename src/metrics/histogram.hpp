#pragma once
// A bucketed distribution (latencies, batch sizes) for Prometheus.
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace herald::metrics {

// Default latency buckets in seconds, 100 us to 10 s in 1-2.5-5 steps per
// decade: from a cache hit on the delivery path to a publish stuck behind an
// fsync, 16 buckets, few enough that observe() stays a short search.
std::vector<double> latency_buckets_seconds();

// Counts observations per bucket (Prometheus `le`: a bucket holds values <=
// its upper bound, the last one +Inf) and their sum. Owns its bucket array.
// Lock-free: any thread may observe(); readers see relaxed atomics, so a
// scrape racing observers may show a sum one observation apart from the
// counts; the count is derived from the buckets so _count always equals the
// +Inf bucket.
class alignas(64) Histogram {
 public:
  // bounds: finite, strictly increasing upper bounds (without +Inf).
  // Throws std::invalid_argument otherwise.
  explicit Histogram(std::vector<double> bounds);
  // The check the constructor makes, for callers that validate up front.
  static void validate_bounds(const std::vector<double>& bounds);

  // A NaN is dropped: it would turn the sum into NaN for good.
  void observe(double v) noexcept;

  std::uint64_t count() const noexcept;
  double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }
  const std::vector<double>& bounds() const noexcept { return bounds_; }
  // Cumulative counts, one per bound and a last one for +Inf (== count).
  std::vector<std::uint64_t> cumulative_counts() const;

  // Approximate q-quantile (q clamped to [0, 1]) by linear interpolation
  // inside the bucket that holds the rank, as Prometheus' histogram_quantile
  // does: the first bucket starts at 0 (or at its bound if that is <= 0); a
  // rank in the +Inf bucket returns the highest finite bound. NaN when empty.
  double quantile(double q) const;

 private:
  std::vector<double> bounds_;                           // upper bounds, strictly increasing
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // bounds_.size() + 1, last = +Inf; not cumulative
  std::atomic<double> sum_{0.0};                         // sum of all observations
};

}  // namespace herald::metrics
