#pragma once
// When an unacked message is sent again (PROTOCOL.md 4.4, 10): the first
// redelivery one ack timeout after the send, each later one after
// initial x 2^(k-2) (k = the attempt being sent), capped, +/- jitter.
#include <chrono>
#include <cstdint>

namespace herald::delivery {

struct RetryPolicy {
  std::chrono::milliseconds ack_timeout{2000};
  std::chrono::milliseconds initial{500};
  std::chrono::milliseconds max{10000};
  std::uint32_t max_attempts = 4;
  double jitter = 0.2;  // +/- 20 %
};

// Delay between sending attempt next_attempt-1 and attempt next_attempt
// (next_attempt >= 2). unit_random in [0, 1) picks the jitter.
std::chrono::milliseconds retry_delay(const RetryPolicy& p, std::uint32_t next_attempt,
                                      double unit_random);

}  // namespace herald::delivery
