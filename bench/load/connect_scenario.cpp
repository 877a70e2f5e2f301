// `herald bench connect`: many idle connections, what they cost the server.
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <boost/json.hpp>

#include "fleet.hpp"
#include "herald/http_api.hpp"
#include "proc_stats.hpp"
#include "progress.hpp"
#include "scenarios.hpp"

namespace herald::bench {

namespace {

// The server's own count of open connections (GET /v1/stats), -1 when unknown.
std::int64_t server_connections(BenchTarget& t) {
  const auto res = sdk::http_request("GET", t.url(), "/v1/stats", t.api_key());
  boost::system::error_code ec;
  const auto v = boost::json::parse(res.body, ec);
  if (ec || !v.is_object()) return -1;
  const auto* c = v.as_object().if_contains("connections");
  return c != nullptr ? c->to_number<std::int64_t>(ec) : -1;
}

void wait_server_connections(BenchTarget& t, std::int64_t n, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (server_connections(t) != n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string endings_text(const FleetReport& r) {
  std::string out;
  for (const auto& [k, n] : r.endings) out += "  " + std::to_string(n) + " x " + k + "\n";
  return out;
}

}  // namespace

void run_connect(const TargetOptions& target, const ConnectOptions& opts, BenchReport& report) {
  const int n = opts.connections;
  BenchTarget t(target, {{"HERALD_STORE", opts.store},
                         {"HERALD_SYNC", opts.sync},
                         {"HERALD_MAX_CONNECTIONS", std::to_string(n + opts.warmup_connections + 1000)},
                         {"HERALD_MAX_CONNECTIONS_PER_IP", std::to_string(n + 1000)},
                         {"HERALD_MAX_CONNECTIONS_PER_USER", "4"}});
  SpawnedServer* server = t.spawned();
  if (server == nullptr) std::cerr << "connect: --url given: server memory is not measured\n";
  FleetOptions fo;
  fo.binary = target.binary;
  fo.ws_url = t.ws_url();
  fo.secret = t.secret();
  fo.per_worker = opts.per_worker;
  fo.rate = opts.rate;

  // ---- warm-up: connections opened and closed, so that the baseline
  // includes what the first connections set up once (thread caches, arenas)
  if (opts.warmup_connections > 0) {
    fo.clients = opts.warmup_connections;
    fo.user_prefix = "warm-";
    Fleet warm(fo);
    warm.command("connect");
    warm.wait_for([&](const FleetStatus& s) { return s.open >= static_cast<std::uint64_t>(fo.clients); },
                  std::chrono::seconds(60),
                  [&](const FleetStatus& s) { return "connect warm-up: " + std::to_string(s.open) + " open"; });
    warm.stop();
  }
  wait_server_connections(t, 0, std::chrono::seconds(10));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const pid_t server_pid = server != nullptr ? server->pid() : 0;
  const MemorySample baseline = sample_memory(server_pid);

  // ---- the connections
  fo.clients = n;
  fo.user_prefix = "conn-";
  Fleet fleet(fo);
  std::cerr << "connect: " << n << " connections at " << format_number(opts.rate) << "/s from " << fleet.workers()
            << " worker processes to " << t.describe() << "\n";
  const auto t0 = std::chrono::steady_clock::now();
  fleet.command("connect");
  const bool all_open = fleet.wait_for(
      [&](const FleetStatus& s) { return s.open >= static_cast<std::uint64_t>(n); },
      std::chrono::milliseconds(static_cast<std::int64_t>(1000.0 * n / opts.rate) + 60000),
      [&](const FleetStatus& s) {
        return "connect: " + format_number(std::round(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() * 10) / 10) +
               " s, started " + std::to_string(s.started) + ", open " + std::to_string(s.open);
      });
  if (!all_open) std::cerr << "connect: not every connection opened\n";

  // ---- idle, then measure
  std::this_thread::sleep_for(std::chrono::duration<double>(opts.hold_s));
  const FleetStatus held = fleet.status();
  const MemorySample held_memory = sample_memory(server_pid);
  const std::int64_t server_conns = server_connections(t);
  FleetReport r = fleet.report(0);
  fleet.stop();
  if (!r.endings.empty()) std::cerr << "connect: connection attempts that ended:\n" << endings_text(r);

  const double open = static_cast<double>(held.open);
  const double connect_s = r.last_connect_ns > r.first_start_ns ? (r.last_connect_ns - r.first_start_ns) / 1e9 : 0;
  BenchRow row;
  row.scenario = "connect";
  row.params = {{"store", opts.store}, {"sync", opts.sync}, {"connections", std::to_string(n)},
                {"rate", format_number(opts.rate)}, {"workers", std::to_string(fleet.workers())},
                {"hold_s", format_number(opts.hold_s)}};
  row.values = {{"open_connections", open},
                {"server_connections", static_cast<double>(server_conns)},
                {"connect_s", connect_s},
                {"connect_rate_per_s", connect_s > 0 ? static_cast<double>(r.connect.count()) / connect_s : 0},
                {"failed_attempts", static_cast<double>([&] {
                   std::uint64_t f = 0;
                   for (const auto& [k, c] : r.endings) f += c;
                   return f;
                 }())}};
  add_memory_values(row.values, baseline, held_memory, open, server != nullptr);
  row.latencies = {{"connect -> welcome", r.connect}};
  report.add(std::move(row));
}

}  // namespace herald::bench
