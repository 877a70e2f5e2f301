#pragma once
// What both peers' devices receive, counted the same way: the payload every
// publish carries (its run, its index in the run, its intended publish
// time) and the devices' record of it (each index once, duplicates
// counted, latency from the intended time). Thread-safe: devices record
// from their threads while the scenario reads the totals.
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "latency_histogram.hpp"

namespace herald::bench::compare {

// {"r":run,"i":k,"t":intended_ns,"pad":"x..."}, padded to about data_bytes.
std::string stamped_payload(int run, std::uint64_t k, std::int64_t intended_ns, int data_bytes);

struct Stamp {
  std::int64_t run = 0;
  std::int64_t k = 0;
  std::int64_t intended_ns = 0;
};
// What stamped_payload() wrote; nullopt for anything else.
std::optional<Stamp> read_stamp(std::string_view payload);

class Receipts {
 public:
  struct Totals {
    std::uint64_t received = 0;    // distinct messages of the run
    std::uint64_t duplicates = 0;  // a message of the run received again
    std::uint64_t ignored = 0;     // other runs, earlier invocations, malformed
    LatencyHistogram latency;      // intended publish time -> receipt, from window_start_ns on
  };

  // Messages of `run` with index < total, intended at or after start_ns,
  // count from now on; the latency of those intended from window_start_ns.
  void start_run(int run, std::uint64_t total, std::int64_t start_ns, std::int64_t window_start_ns);
  // Late arrivals of the run are ignored from now on.
  void end_run();
  // A device got this payload at now_ns.
  void record(std::string_view payload, std::int64_t now_ns);
  std::uint64_t received() const;
  Totals totals() const;
  // Messages acknowledged to the publisher (bit k of acked: message k) that
  // no device received.
  std::uint64_t missing(const std::vector<std::uint64_t>& acked) const;

 private:
  mutable std::mutex mu_;
  int run_ = 0;  // 0: no run, everything is ignored
  std::int64_t start_ns_ = 0;
  std::int64_t window_start_ns_ = 0;
  std::vector<std::uint64_t> seen_;  // bit k: message k received
  std::uint64_t total_ = 0;
  Totals totals_;
};

}  // namespace herald::bench::compare
