#include "delivery/retry_schedule.hpp"

#include <algorithm>
#include <cmath>

namespace herald::delivery {

std::chrono::milliseconds retry_delay(const RetryPolicy& p, std::uint32_t next_attempt,
                                      double unit_random) {
  if (next_attempt <= 2) return p.ack_timeout;
  // initial x 2^(k-2), computed in double to avoid overflow for large k.
  const double base = std::min(static_cast<double>(p.initial.count()) *
                                   std::pow(2.0, static_cast<double>(next_attempt - 2)),
                               static_cast<double>(p.max.count()));
  const double factor = 1.0 + p.jitter * (2.0 * unit_random - 1.0);
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(base * factor)));
}

}  // namespace herald::delivery
