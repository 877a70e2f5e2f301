#pragma once
// A token bucket: `rate` tokens per second, holding at most `burst`. Used for
// the inbound frame rate of a connection (PROTOCOL.md 9, close 4029) and the
// publish rate per API key. Not thread-safe: one owner, or a lock around it.
#include <algorithm>
#include <chrono>

namespace herald {

// The rate and the burst, shared by every bucket that has the same ones.
struct TokenRate {
  double per_second;
  double burst;
};

// A bucket's state alone, for an owner of many buckets with one rate (every
// connection's frame budget): the rate comes with each call, and each
// bucket costs 16 bytes.
class TokenCount {
 public:
  using Clock = std::chrono::steady_clock;

  TokenCount(const TokenRate& rate, Clock::time_point now) : tokens_(rate.burst), last_(now) {}

  // Takes one token if there is one.
  bool try_take(const TokenRate& rate, Clock::time_point now) {
    refill(rate, now);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

  // Seconds until one token is available (0 if one is).
  double seconds_until_available(const TokenRate& rate, Clock::time_point now) {
    refill(rate, now);
    return tokens_ >= 1.0 ? 0.0 : (1.0 - tokens_) / rate.per_second;
  }

 private:
  void refill(const TokenRate& rate, Clock::time_point now) {
    if (now <= last_) return;
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(rate.burst, tokens_ + elapsed * rate.per_second);
    last_ = now;
  }

  double tokens_;
  Clock::time_point last_;
};

class TokenBucket {
 public:
  using Clock = TokenCount::Clock;

  TokenBucket(double rate_per_second, double burst, Clock::time_point now = Clock::now())
      : rate_{rate_per_second, burst}, count_(rate_, now) {}

  // Takes one token if there is one.
  bool try_take(Clock::time_point now = Clock::now()) { return count_.try_take(rate_, now); }

  // Seconds until one token is available (0 if one is).
  double seconds_until_available(Clock::time_point now = Clock::now()) {
    return count_.seconds_until_available(rate_, now);
  }

 private:
  TokenRate rate_;
  TokenCount count_;
};

}  // namespace herald
