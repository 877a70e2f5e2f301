#pragma once
// A monotonically increasing count for Prometheus.
#include <atomic>
#include <cstdint>

namespace herald::metrics {

// Counts events (frames sent, publishes accepted, drops by reason). Owns one
// relaxed atomic: any thread may call inc() without a lock; value() is exact
// only once writers are quiet, which is all a scrape needs.
//
// Aligned to a cache line: counters are allocated one by one and bumped from
// different I/O threads; sharing a line would make unrelated counters contend.
class alignas(64) Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

}  // namespace herald::metrics
