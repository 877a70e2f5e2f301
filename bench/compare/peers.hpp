#pragma once
// The peers Herald is compared with (bench/compare): the same scenarios as
// `herald bench fanout` and `herald bench connect`, run against Mosquitto
// (MQTT QoS 1, persistent sessions, through libmosquitto) and nats-server
// with JetStream (a durable consumer per device with explicit acks, through
// libnats). Each scenario adds rows to a BenchReport whose parameter and
// value names are the ones Herald's scenarios use, plus a "peer" parameter,
// so that bench/compare/report.py can put them side by side.
#include <sys/types.h>

#include <string>
#include <vector>

#include "bench_report.hpp"

namespace herald::bench::compare {

// A peer server already running on loopback (bench/compare/run.sh starts it).
struct PeerServer {
  std::string host = "127.0.0.1";
  int port = 0;
  pid_t pid = 0;  // for its memory (/proc/PID); 0: not measured
};

// N devices, one user each (an MQTT client subscribed to its user's topic,
// or a NATS connection with its device's durable consumer); publishers at a
// fixed rate (open loop) to random users; latency from the intended publish
// time to the device's receipt ("publish -> client") and to the peer's
// acknowledgement of the publish ("publish -> 200": PUBACK, JetStream PubAck).
struct FanoutOptions {
  int connections = 10000;
  std::vector<double> rates{2000, 10000, 20000};  // messages per second, one run each
  int publishers = 16;                            // publishing connections
  int data_bytes = 64;
  double warmup_s = 3;
  double duration_s = 15;
  double drain_s = 5;
  // Source addresses for the devices' connections, round robin (127.0.0.2, ...).
  std::vector<std::string> local_addresses{"127.0.0.2", "127.0.0.3"};
};

// N idle devices (persistent session or durable consumer each) opened at a
// fixed rate from `processes` child processes; the server's memory per
// connection over a baseline taken after a warm-up, and the kernel's socket
// memory, read as `herald bench connect` reads them (proc_stats.hpp).
struct ConnectOptions {
  int connections = 19000;
  double rate = 2000;
  int processes = 4;  // each under the 20000-file limit, each from its own source address
  int warmup_connections = 200;
  double hold_s = 5;
};

void run_mosquitto_fanout(const PeerServer& server, const FanoutOptions& opts, BenchReport& report);
void run_mosquitto_connect(const PeerServer& server, const ConnectOptions& opts, BenchReport& report);
void run_nats_fanout(const PeerServer& server, const FanoutOptions& opts, BenchReport& report);
void run_nats_connect(const PeerServer& server, const ConnectOptions& opts, BenchReport& report);

}  // namespace herald::bench::compare
