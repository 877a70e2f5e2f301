#pragma once
// The bench tool's scenarios (`herald bench <scenario>`). Each runs against
// a BenchTarget, shows progress on stderr and adds rows to a BenchReport.
#include <string>
#include <vector>

#include "bench_report.hpp"
#include "bench_target.hpp"

namespace herald::bench {

// Publish throughput and latency with concurrent publishers, each waiting
// for its 200 before the next publish (closed loop: what durable appends
// per second the store gives), for each sync policy.
struct DurableOptions {
  std::vector<std::string> syncs{"always", "batch", "none"};
  std::vector<int> publishers{1, 16, 256};
  std::string store = "rocksdb";
  int users = 1000;
  int data_bytes = 64;
  double warmup_s = 2;
  double duration_s = 10;
};
void run_durable(const TargetOptions& target, const DurableOptions& opts, BenchReport& report);

// A device with `messages` pending connects: the time until it has all of
// them (each acked as it arrives, as the SDK does).
struct ReplayOptions {
  int messages = 10000;
  int runs = 3;
  std::string store = "rocksdb";
  std::string sync = "batch";
};
void run_replay(const TargetOptions& target, const ReplayOptions& opts, BenchReport& report);

// N connected devices; publishers at a fixed rate (open loop) spread over
// the users; latency from the intended publish time to the client's receipt.
struct FanoutOptions {
  int connections = 1000;
  int devices_per_user = 1;
  std::vector<double> rates{2000};  // messages per second, one run each
  int http_connections = 64;
  std::string store = "rocksdb";
  std::string sync = "batch";
  int data_bytes = 64;
  double warmup_s = 3;
  double duration_s = 15;
  double drain_s = 5;  // after the last publish, wait this long for stragglers
};
void run_fanout(const TargetOptions& target, const FanoutOptions& opts, BenchReport& report);

}  // namespace herald::bench
