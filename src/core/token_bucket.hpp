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
// bucket costs 8 bytes. The state is one time, as in GCRA (the generic
// cell rate algorithm): when the bucket will be full again. A take is
// allowed while that lies at most (burst - 1) tokens' worth of time ahead
// of now, and moves it one token's worth later. The answers are those of
// counting tokens, except that a burst below 1 still lets one take through
// per 1/rate (a count would never reach a whole token).
class TokenCount {
 public:
  using Clock = std::chrono::steady_clock;

  TokenCount(const TokenRate& /*rate*/, Clock::time_point now) : full_at_(now) {}

  // Takes one token if there is one.
  bool try_take(const TokenRate& rate, Clock::time_point now) {
    const Clock::time_point from = std::max(full_at_, now);
    if (from - now > slack(rate)) return false;
    full_at_ = from + per_token(rate);
    return true;
  }

  // Seconds until one token is available (0 if one is).
  double seconds_until_available(const TokenRate& rate, Clock::time_point now) const {
    const auto wait = std::max(full_at_, now) - now - slack(rate);
    return wait.count() <= 0 ? 0.0 : std::chrono::duration<double>(wait).count();
  }

 private:
  static Clock::duration per_token(const TokenRate& rate) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate.per_second));
  }
  // How far ahead of now full_at_ may be for a take to pass: burst - 1 tokens.
  static Clock::duration slack(const TokenRate& rate) {
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(std::max(0.0, rate.burst - 1.0) / rate.per_second));
  }

  Clock::time_point full_at_;
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
