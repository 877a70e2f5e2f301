#pragma once
// When a herald::sdk::Client tries again after losing its connection.
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>

namespace herald::sdk {

// Exponential backoff with full jitter: the n-th delay since the last reset is
// uniform in [0, min(max, initial * 2^n)]. Full jitter spreads a crowd of clients
// that lost the same server over the whole window instead of in waves.
// Owns its random engine; not thread-safe (each Client has its own, used on its strand).
class ReconnectBackoff {
 public:
  ReconnectBackoff(std::chrono::milliseconds initial, std::chrono::milliseconds max,
                   std::uint64_t seed);

  // The next delay; advances the exponent.
  std::chrono::milliseconds next();
  // The same, drawn from [0, min(current_cap(), ceiling)].
  std::chrono::milliseconds next(std::chrono::milliseconds ceiling);
  // The upper bound the next call to next() draws from.
  std::chrono::milliseconds current_cap() const;
  // After a successful welcome: the next delay draws from [0, initial] again.
  void reset() { failures_ = 0; }
  // A delay uniform in [0, bound]: for 1001 going away (PROTOCOL.md 6), which does
  // not count as a failure of this client.
  std::chrono::milliseconds uniform(std::chrono::milliseconds bound);

  std::uint32_t failures() const { return failures_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::uint32_t failures_ = 0;  // delays drawn since the last reset
  std::mt19937_64 rng_;
};

// The integer after "retry_after=" in a close reason (1001 while draining), if any.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view close_reason);

// The bound of the random delay after a 1001 close: retry_after= from the reason when
// present, else backoff_max (PROTOCOL.md 6: "reconnect after a random 0..retry_after delay").
std::chrono::milliseconds going_away_bound(std::string_view close_reason,
                                           std::chrono::milliseconds backoff_max);

}  // namespace herald::sdk
