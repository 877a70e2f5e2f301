#pragma once
// Many client connections for the bench tool, spread over worker processes.
//
// One process may open at most `ulimit -n` files, and one source address has
// about 28k ephemeral ports, so tens of thousands of connections need several
// processes and several source addresses. A Fleet (in the bench process)
// starts `herald bench worker` processes, each holding at most
// `per_worker` connections bound to its own loopback address (127.0.0.2,
// 127.0.0.3, ...), and talks to them over pipes in JSON lines:
//
//   parent -> worker (stdin):  connect | expect N | since T_NS | report T0_NS | stop
//
// `since` marks a phase (welcomes and completions at or after it count as
// resumed, complete); `report` measures their latencies from T0.
//   worker -> parent (stdout): {"type":"status",...} every 250 ms,
//                              {"type":"report",...} once per `report`
//
// Client i is user "<prefix><i>", device "d", one connection each, a token
// minted from the HS256 secret (passed in the environment, not argv). The
// data of every message published to those users is {"k":K}: a worker
// counts, per client, which K in 0..N-1 (`expect N`) arrived, so lost and
// duplicate messages are counted per user. Times are CLOCK_MONOTONIC
// nanoseconds (mono_ns), the same clock in every process of the machine.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "latency_histogram.hpp"

namespace herald::bench {

// What every worker reports, summed over the fleet.
struct FleetStatus {
  std::uint64_t started = 0;    // clients started (connect pacing)
  std::uint64_t open = 0;       // clients whose connection is open now
  std::uint64_t welcomed = 0;   // clients that received at least one welcome
  std::uint64_t resumed = 0;    // clients whose latest welcome came at or after `since`
  std::uint64_t received = 0;   // distinct expected messages received, over all clients
  std::uint64_t duplicates = 0; // expected messages handed to the application again
  std::uint64_t complete = 0;   // clients that have every expected message
  int workers = 0;              // workers still running
};

// The end-of-phase report of `report T0`, merged over the fleet.
struct FleetReport {
  LatencyHistogram connect;       // start() -> first welcome, per client
  LatencyHistogram resume;        // T0 -> latest welcome, clients welcomed at or after `since`
  LatencyHistogram all_received;  // T0 -> the client's last expected message, completed after `since`
  std::uint64_t clients = 0;
  std::uint64_t lost = 0;          // expected messages not received
  std::uint64_t duplicates = 0;    // expected messages handed out more than once
  std::uint64_t redelivered = 0;   // msg frames the SDK dropped as already processed
  std::uint64_t reconnects = 0;    // welcomes after a client's first
  std::int64_t first_start_ns = 0; // first client start()
  std::int64_t last_connect_ns = 0;  // latest first welcome
  std::int64_t last_resume_ns = 0;   // latest welcome at or after `since`
  std::int64_t last_complete_ns = 0; // latest completion at or after `since`
  std::map<std::string, std::uint64_t> endings;  // why connections (attempts) ended: "code reason" -> count
};

struct FleetOptions {
  std::string binary;      // the herald executable
  std::string ws_url;      // ws://127.0.0.1:PORT/v1/ws
  std::string secret;      // HS256 secret to mint client tokens
  int clients = 1000;
  int per_worker = 5000;   // a worker's connections; its fds stay well under ulimit -n 20000
  double rate = 2000;      // connections started per second, over the whole fleet
  std::string user_prefix = "fleet-";
  std::chrono::seconds connect_timeout{30};  // per attempt; a loaded server may take a while
};

class Fleet {
 public:
  // Starts the workers (they connect nothing until connect()).
  explicit Fleet(FleetOptions opts);
  ~Fleet();  // stop()
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  int workers() const { return static_cast<int>(workers_.size()); }
  // Sends one command line to every worker.
  void command(const std::string& line);
  FleetStatus status() const;
  // Polls status() until done(status) or timeout, redrawing line(status) on
  // stderr every second; whether done() became true.
  bool wait_for(const std::function<bool(const FleetStatus&)>& done, std::chrono::milliseconds timeout,
                const std::function<std::string(const FleetStatus&)>& line);
  // Sends `report t0_ns` and merges every worker's answer.
  FleetReport report(std::int64_t t0_ns, std::chrono::seconds timeout = std::chrono::seconds(60));
  // Sends `stop`, waits for the workers to close their clients and exit.
  void stop();

 private:
  struct Worker;
  void do_read(const std::shared_ptr<Worker>& w);
  void on_line(Worker& w, const std::string& line);

  FleetOptions opts_;
  boost::asio::io_context ioc_;  // reads the workers' pipes, on thread_
  std::vector<std::shared_ptr<Worker>> workers_;
  std::thread thread_;
  mutable std::mutex mu_;  // guards the workers' latest status and reports
  bool stopped_ = false;
};

// What `herald bench worker` runs (inside a worker process): the clients
// [first, first + count) of a fleet, on one io_context and one thread,
// commands on stdin, status and reports on stdout. The exit code.
struct FleetWorkerOptions {
  std::string ws_url;
  std::string local_address;  // source address of every connection
  int first = 0;
  int count = 0;
  double rate = 500;  // connections started per second by this worker
  std::string user_prefix = "fleet-";
  int connect_timeout_s = 30;
};
int run_fleet_worker(const FleetWorkerOptions& opts);

// The environment variable that carries the HS256 secret to workers.
inline constexpr const char* kFleetSecretEnv = "HERALD_BENCH_SECRET";

}  // namespace herald::bench
