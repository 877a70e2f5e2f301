#pragma once
// A value that goes up and down, for Prometheus.
#include <atomic>
#include <cstdint>

namespace herald::metrics {

// Tracks a level (open connections, queued frames, inflight messages). Owns
// one relaxed atomic: any thread may call it without a lock. Integer-valued
// because every level Herald tracks is a count; a computed fractional value
// belongs in Registry::gauge_fn.
//
// Aligned to a cache line for the same reason as Counter.
class alignas(64) Gauge {
 public:
  void set(std::int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(std::int64_t d) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
  void sub(std::int64_t d) noexcept { value_.fetch_sub(d, std::memory_order_relaxed); }
  std::int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

}  // namespace herald::metrics
