#include "bench_command.hpp"

#include <unistd.h>

#include <fstream>
#include <iostream>

#include <boost/json.hpp>

namespace herald::cli {

namespace {

std::string self_executable() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("herald");
}

}  // namespace

BenchCommand::BenchCommand(CLI::App& app) {
  bench_ = app.add_subcommand("bench", "Measure a server: durable, replay, fanout, connect, storm (see docs/benchmarks.md)");
  bench_->require_subcommand(1);
  bench_->add_option("--url", target_.url, "http://HOST:PORT of a running server (default: start one per run)");
  bench_->add_option("--api-key", target_.api_key, "API key of --url");
  bench_->add_option("--secret", target_.secret, "HS256 secret of --url (to mint client tokens)");
  bench_->add_option("--server-env", server_env_, "KEY=VALUE settings for the started server (repeatable)");
  bench_->add_option("--json", json_file_, "also write the results as JSON to this file");

  durable_ = bench_->add_subcommand("durable", "Closed-loop publishers: accepted publishes per second per sync policy");
  durable_->add_option("--sync", durable_opts_.syncs, "sync policies to run")->delimiter(',')->capture_default_str();
  durable_->add_option("--publishers", durable_opts_.publishers, "concurrent publishers")->delimiter(',')->capture_default_str();
  durable_->add_option("--store", durable_opts_.store, "store of the started server")->capture_default_str();
  durable_->add_option("--users", durable_opts_.users, "publishes spread over this many users")->capture_default_str();
  durable_->add_option("--data-bytes", durable_opts_.data_bytes, "size of each message's data")->capture_default_str();
  durable_->add_option("--batch", durable_opts_.batch, "messages per request (above 1: POST /v1/publish/batch)")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  durable_->add_flag("--ids", durable_opts_.ids, "publishers choose each message's id (an idempotency key); by default the server generates them");
  durable_->add_option("--warmup", durable_opts_.warmup_s, "seconds not measured")->capture_default_str();
  durable_->add_option("--duration", durable_opts_.duration_s, "seconds measured")->capture_default_str();

  replay_ = bench_->add_subcommand("replay", "A device with K pending messages connects: time until it has all");
  replay_->add_option("--messages", replay_opts_.messages, "pending messages")->capture_default_str();
  replay_->add_option("--runs", replay_opts_.runs, "repetitions")->capture_default_str();
  replay_->add_option("--store", replay_opts_.store, "store of the started server")->capture_default_str();
  replay_->add_option("--sync", replay_opts_.sync, "sync policy of the started server")->capture_default_str();

  fanout_ = bench_->add_subcommand("fanout", "Connected devices, open-loop publishers: publish-to-client latency");
  fanout_->add_option("--connections", fanout_opts_.connections, "connected devices")->capture_default_str();
  fanout_->add_option("--devices-per-user", fanout_opts_.devices_per_user, "devices of each user")->capture_default_str();
  fanout_->add_option("--rate", fanout_opts_.rates, "messages per second, one run each")->delimiter(',')->capture_default_str();
  fanout_->add_option("--http-connections", fanout_opts_.http_connections, "publisher connections")->capture_default_str();
  fanout_->add_option("--linger-ms", fanout_opts_.linger_ms,
                      "0: a request per message; else what falls due within this many ms as one batch request")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str();
  fanout_->add_option("--store", fanout_opts_.store, "store of the started server")->capture_default_str();
  fanout_->add_option("--sync", fanout_opts_.sync, "sync policy of the started server")->capture_default_str();
  fanout_->add_option("--data-bytes", fanout_opts_.data_bytes, "size of each message's data")->capture_default_str();
  fanout_->add_option("--warmup", fanout_opts_.warmup_s, "seconds not measured")->capture_default_str();
  fanout_->add_option("--duration", fanout_opts_.duration_s, "seconds measured")->capture_default_str();
  fanout_->add_option("--drain", fanout_opts_.drain_s, "longest wait for stragglers")->capture_default_str();

  connect_ = bench_->add_subcommand("connect", "Many idle connections: connect rate and latency, server memory per connection");
  connect_->add_option("--connections", connect_opts_.connections, "idle connections, one user each")->capture_default_str();
  connect_->add_option("--rate", connect_opts_.rate, "connections started per second")->capture_default_str();
  connect_->add_option("--per-worker", connect_opts_.per_worker, "connections per worker process")->capture_default_str();
  connect_->add_option("--warmup-connections", connect_opts_.warmup_connections, "opened and closed before the baseline")->capture_default_str();
  connect_->add_option("--hold", connect_opts_.hold_s, "idle seconds before memory is read")->capture_default_str();
  connect_->add_option("--store", connect_opts_.store, "store of the started server")->capture_default_str();
  connect_->add_option("--sync", connect_opts_.sync, "sync policy of the started server")->capture_default_str();

  storm_ = bench_->add_subcommand("storm", "The server restarts under N clients: time until all resumed, lost and duplicates");
  storm_->add_option("--connections", storm_opts_.connections, "connected clients, one user each")->capture_default_str();
  storm_->add_option("--rate", storm_opts_.rate, "initial connections per second")->capture_default_str();
  storm_->add_option("--per-worker", storm_opts_.per_worker, "connections per worker process")->capture_default_str();
  storm_->add_option("--messages-before", storm_opts_.messages_before, "per user, acked before the restart")->capture_default_str();
  storm_->add_option("--messages-after", storm_opts_.messages_after, "per user, published once the server is ready again")->capture_default_str();
  storm_->add_flag("--kill", storm_opts_.kill, "SIGKILL the server instead of SIGTERM");
  storm_->add_option("--timeout", storm_opts_.timeout_s, "longest wait for each phase, seconds")->capture_default_str();
  storm_->add_option("--http-connections", storm_opts_.http_connections, "publisher connections")->capture_default_str();
  storm_->add_option("--store", storm_opts_.store, "store of the started server")->capture_default_str();
  storm_->add_option("--sync", storm_opts_.sync, "sync policy of the started server")->capture_default_str();

  // Started by connect and storm (bench/load/fleet.hpp), not by people.
  worker_ = bench_->add_subcommand("worker", "");
  worker_->group("");
  worker_->add_option("--ws-url", worker_opts_.ws_url)->required();
  worker_->add_option("--local-address", worker_opts_.local_address);
  worker_->add_option("--first", worker_opts_.first);
  worker_->add_option("--count", worker_opts_.count)->required();
  worker_->add_option("--rate", worker_opts_.rate);
  worker_->add_option("--user-prefix", worker_opts_.user_prefix);
  worker_->add_option("--connect-timeout", worker_opts_.connect_timeout_s);
}

int BenchCommand::run() {
  if (worker_->parsed()) return bench::run_fleet_worker(worker_opts_);
  target_.binary = self_executable();
  for (const auto& kv : server_env_) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || !kv.starts_with("HERALD_")) {
      std::cerr << "herald bench: --server-env takes HERALD_NAME=VALUE, not " << kv << "\n";
      return 2;
    }
    target_.server_env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (!target_.url.empty() && (target_.api_key.empty() || target_.secret.empty())) {
    std::cerr << "herald bench: --url needs --api-key and --secret\n";
    return 2;
  }
  bench::BenchReport report;
  try {
    if (durable_->parsed()) bench::run_durable(target_, durable_opts_, report);
    if (replay_->parsed()) bench::run_replay(target_, replay_opts_, report);
    if (fanout_->parsed()) bench::run_fanout(target_, fanout_opts_, report);
    if (connect_->parsed()) bench::run_connect(target_, connect_opts_, report);
    if (storm_->parsed()) bench::run_storm(target_, storm_opts_, report);
  } catch (const std::exception& e) {
    std::cerr << "herald bench: " << e.what() << "\n";
    return 1;
  }
  report.print(std::cout);
  if (!json_file_.empty()) {
    std::ofstream out(json_file_);
    out << boost::json::serialize(report.json()) << "\n";
    if (!out) {
      std::cerr << "herald bench: cannot write " << json_file_ << "\n";
      return 1;
    }
  }
  for (const auto& p : report.problems()) std::cerr << "herald bench: " << p << "\n";
  return report.problems().empty() ? 0 : 1;
}

}  // namespace herald::cli
