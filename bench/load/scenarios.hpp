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
  int batch = 1;  // messages per request; above 1 through /v1/publish/batch
  bool ids = false;  // publisher-chosen ids (else the server generates them)
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
  // 0: one request per message. Above 0: what falls due within this many ms
  // goes out as one /v1/publish/batch request (a producer's linger), each
  // message still timed from its own intended time.
  double linger_ms = 0;
  std::string store = "rocksdb";
  std::string sync = "batch";
  int data_bytes = 64;
  double warmup_s = 3;
  double duration_s = 15;
  double drain_s = 5;  // after the last publish, wait this long for stragglers
};
void run_fanout(const TargetOptions& target, const FanoutOptions& opts, BenchReport& report);

// N idle connections (a distinct user each) opened at a fixed rate from
// worker processes (fleet.hpp): connect rate and latency (start -> welcome),
// and what the idle connections cost the server: user-space memory (VmRSS
// over a 0-connection baseline) and kernel socket memory (/proc/net/sockstat).
struct ConnectOptions {
  int connections = 19000;     // with RocksDB's files, as many as fit under ulimit -n 20000
  double rate = 2000;          // connections started per second
  int per_worker = 5000;       // connections per worker process
  int warmup_connections = 200;  // opened and closed before the baseline, so that it includes lazy set-up
  double hold_s = 5;           // idle time before memory is read
  std::string store = "rocksdb";
  std::string sync = "batch";
};
void run_connect(const TargetOptions& target, const ConnectOptions& opts, BenchReport& report);

// N connected clients that have acked some messages; the server restarts
// (SIGTERM, or SIGKILL with `kill`) on the same data directory and port;
// messages are published to every user as soon as it is ready while all
// clients reconnect with the SDK's jittered backoff and resume from their
// last seq. Time from ready to every client resumed and to every message
// received; lost and duplicate messages (both must be 0).
struct StormOptions {
  int connections = 19000;
  double rate = 2000;          // initial connections per second
  int per_worker = 5000;
  int messages_before = 2;     // per user, received and acked before the restart
  int messages_after = 2;      // per user, published once the restarted server is ready
  bool kill = false;           // SIGKILL instead of SIGTERM (no drain, no cursor flush)
  double timeout_s = 120;      // longest wait for the resume and the messages
  int http_connections = 8;    // publisher connections
  std::string store = "rocksdb";
  std::string sync = "batch";
};
void run_storm(const TargetOptions& target, const StormOptions& opts, BenchReport& report);

}  // namespace herald::bench
