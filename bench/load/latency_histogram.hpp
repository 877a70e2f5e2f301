#pragma once
// An HDR-style latency histogram for the bench tool: log-linear buckets
// (64 linear sub-buckets per power of two, so every recorded value is kept
// within 1/64 = 1.6 % of its true value) from 1 µs to about 2^40 µs, in a
// fixed array: recording is an index computation and an increment, with no
// allocation, so it can sit on a client's receive path.
//
// Not thread-safe: one per thread, merged at the end.
#include <array>
#include <chrono>
#include <cstdint>

#include <boost/json/value.hpp>

namespace herald::bench {

class LatencyHistogram {
 public:
  void record(std::chrono::nanoseconds latency);
  void merge(const LatencyHistogram& other);

  std::uint64_t count() const { return count_; }
  // The value at quantile q (0..1), as the upper edge of its bucket; zero when empty.
  std::chrono::nanoseconds quantile(double q) const;
  std::chrono::nanoseconds max() const { return std::chrono::nanoseconds(max_ns_); }
  std::chrono::nanoseconds mean() const;

  // Exact, sparse JSON form ({"count","max_ns","sum_ns","buckets":[[index,n],...]}),
  // for bench worker processes that send their histograms to the parent to merge.
  boost::json::value to_json() const;
  // The histogram to_json() described; an empty one for anything else.
  static LatencyHistogram from_json(const boost::json::value& v);

 private:
  static constexpr int kSubBits = 6;  // 64 sub-buckets per power of two
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kMagnitudes = 41;
  static constexpr std::size_t kBuckets = static_cast<std::size_t>(kSub) * kMagnitudes;

  static std::size_t index_of(std::uint64_t micros_scaled);
  static std::uint64_t upper_edge(std::size_t index);

  std::array<std::uint64_t, kBuckets> buckets_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ns_ = 0;
  long double sum_ns_ = 0;
};

}  // namespace herald::bench
