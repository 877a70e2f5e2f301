#include "latency_histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

#include <boost/json.hpp>

namespace herald::bench {

// Values are recorded in units of 1/16 µs (62.5 ns): fine enough for
// loopback latencies, and 2^46 units still cover about 50 days.
namespace {
constexpr std::uint64_t kUnitNs = 1000 / 16;
}

std::size_t LatencyHistogram::index_of(std::uint64_t v) {
  // Values below kSub map linearly; above, magnitude m (the position of the
  // highest bit past kSubBits) picks a band and the next kSubBits bits the
  // sub-bucket within it.
  if (v < static_cast<std::uint64_t>(kSub)) return static_cast<std::size_t>(v);
  const int top = std::bit_width(v) - 1;          // >= kSubBits
  const int magnitude = top - kSubBits + 1;       // >= 1
  const std::uint64_t sub = (v >> (magnitude - 1)) - kSub;  // 0..kSub-1
  const std::size_t i = static_cast<std::size_t>(magnitude) * kSub + static_cast<std::size_t>(sub);
  return std::min(i, kBuckets - 1);
}

std::uint64_t LatencyHistogram::upper_edge(std::size_t index) {
  if (index < static_cast<std::size_t>(kSub)) return index + 1;
  const std::size_t magnitude = index / kSub;
  const std::uint64_t sub = index % kSub;
  return (static_cast<std::uint64_t>(kSub) + sub + 1) << (magnitude - 1);
}

void LatencyHistogram::record(std::chrono::nanoseconds latency) {
  const std::uint64_t ns = latency.count() > 0 ? static_cast<std::uint64_t>(latency.count()) : 0;
  ++buckets_[index_of(ns / kUnitNs)];
  ++count_;
  max_ns_ = std::max(max_ns_, ns);
  sum_ns_ += static_cast<long double>(ns);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  max_ns_ = std::max(max_ns_, other.max_ns_);
  sum_ns_ += other.sum_ns_;
}

std::chrono::nanoseconds LatencyHistogram::quantile(double q) const {
  if (count_ == 0) return std::chrono::nanoseconds(0);
  const auto rank = static_cast<std::uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(count_)));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= std::max<std::uint64_t>(rank, 1)) {
      // Never report past the largest value actually seen; the last
      // bucket also holds everything beyond the range.
      if (i == kBuckets - 1) return max();
      return std::chrono::nanoseconds(std::min(upper_edge(i) * kUnitNs, max_ns_));
    }
  }
  return max();
}

std::chrono::nanoseconds LatencyHistogram::mean() const {
  if (count_ == 0) return std::chrono::nanoseconds(0);
  return std::chrono::nanoseconds(static_cast<std::int64_t>(sum_ns_ / static_cast<long double>(count_)));
}

boost::json::value LatencyHistogram::to_json() const {
  boost::json::array buckets;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    if (buckets_[i] != 0) buckets.push_back(boost::json::array{i, buckets_[i]});
  }
  return boost::json::object{{"count", count_},
                             {"max_ns", max_ns_},
                             {"sum_ns", static_cast<double>(sum_ns_)},
                             {"buckets", std::move(buckets)}};
}

LatencyHistogram LatencyHistogram::from_json(const boost::json::value& v) {
  LatencyHistogram h;
  const auto* o = v.if_object();
  if (o == nullptr) return h;
  boost::system::error_code ec;
  const auto* buckets = o->if_contains("buckets");
  if (buckets == nullptr || !buckets->is_array()) return h;
  for (const auto& b : buckets->get_array()) {
    const auto* pair = b.if_array();
    if (pair == nullptr || pair->size() != 2) continue;
    const auto i = pair->at(0).to_number<std::uint64_t>(ec);
    const auto n = pair->at(1).to_number<std::uint64_t>(ec);
    if (ec || i >= kBuckets) continue;
    h.buckets_[i] += n;
    h.count_ += n;
  }
  if (const auto* m = o->if_contains("max_ns")) h.max_ns_ = m->to_number<std::uint64_t>(ec);
  if (const auto* sum = o->if_contains("sum_ns")) h.sum_ns_ = sum->to_number<double>(ec);
  return h;
}

}  // namespace herald::bench
