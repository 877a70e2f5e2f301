#pragma once
// Wall-clock milliseconds for wire timestamps; steady time for timers.
#include <chrono>
#include <cstdint>

namespace herald {

using SteadyClock = std::chrono::steady_clock;

inline std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace herald
