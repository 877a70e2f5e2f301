#include "metrics/histogram.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>

namespace herald::metrics {

std::vector<double> latency_buckets_seconds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0};
}

void Histogram::validate_bounds(const std::vector<double>& bounds) {
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) throw std::invalid_argument("histogram: bounds must be finite");
    if (i > 0 && !(bounds[i - 1] < bounds[i])) {
      throw std::invalid_argument("histogram: bounds must be strictly increasing");
    }
  }
}

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  validate_bounds(bounds_);
  counts_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
}

void Histogram::observe(double v) noexcept {
  if (std::isnan(v)) return;
  // First bound >= v: `le` is inclusive. Past the end is the +Inf bucket.
  const auto bucket = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::uint64_t Histogram::count() const noexcept {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) total += counts_[i].load(std::memory_order_relaxed);
  return total;
}

std::vector<std::uint64_t> Histogram::cumulative_counts() const {
  std::vector<std::uint64_t> out(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    out[i] = running;
  }
  return out;
}

double Histogram::quantile(double q) const {
  const std::vector<std::uint64_t> cumulative = cumulative_counts();
  const std::uint64_t total = cumulative.back();
  if (total == 0) return std::numeric_limits<double>::quiet_NaN();
  const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(total);
  // The first non-empty bucket whose cumulative count reaches the rank.
  std::size_t i = 0;
  std::uint64_t below = 0;  // cumulative count of the buckets before i
  for (; i < cumulative.size(); ++i) {
    const std::uint64_t in_bucket = cumulative[i] - below;
    if (in_bucket > 0 && static_cast<double>(cumulative[i]) >= rank) break;
    below = cumulative[i];
  }
  if (i >= bounds_.size()) return bounds_.empty() ? std::numeric_limits<double>::quiet_NaN() : bounds_.back();
  const double upper = bounds_[i];
  const double lower = i == 0 ? 0.0 : bounds_[i - 1];
  if (i == 0 && upper <= 0.0) return upper;
  const double in_bucket = static_cast<double>(cumulative[i] - below);
  return lower + (upper - lower) * (rank - static_cast<double>(below)) / in_bucket;
}

}  // namespace herald::metrics
