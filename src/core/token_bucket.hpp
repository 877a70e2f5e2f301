#pragma once
// A token bucket: `rate` tokens per second, holding at most `burst`. Used for
// the inbound frame rate of a connection (PROTOCOL.md 9, close 4029) and the
// publish rate per API key. Not thread-safe: one owner, or a lock around it.
#include <algorithm>
#include <chrono>

namespace herald {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  TokenBucket(double rate_per_second, double burst, Clock::time_point now = Clock::now())
      : rate_(rate_per_second), burst_(burst), tokens_(burst), last_(now) {}

  // Takes one token if there is one.
  bool try_take(Clock::time_point now = Clock::now()) {
    refill(now);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

  // Seconds until one token is available (0 if one is).
  double seconds_until_available(Clock::time_point now = Clock::now()) {
    refill(now);
    return tokens_ >= 1.0 ? 0.0 : (1.0 - tokens_) / rate_;
  }

 private:
  void refill(Clock::time_point now) {
    if (now <= last_) return;
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
    last_ = now;
  }

  double rate_;
  double burst_;
  double tokens_;
  Clock::time_point last_;
};

}  // namespace herald
