#pragma once
// `herald bench`: the load scenarios of bench/load wired to the command line.
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "fleet.hpp"
#include "scenarios.hpp"

namespace herald::cli {

class BenchCommand {
 public:
  // Adds `bench` and its scenarios to app.
  explicit BenchCommand(CLI::App& app);
  bool parsed() const { return bench_->parsed(); }
  // Runs the scenario that was parsed; the process exit code.
  int run();

 private:
  CLI::App* bench_;
  CLI::App* durable_;
  CLI::App* replay_;
  CLI::App* fanout_;
  CLI::App* connect_;
  CLI::App* storm_;
  CLI::App* worker_;  // hidden: a worker process of connect and storm
  bench::TargetOptions target_;
  std::vector<std::string> server_env_;  // KEY=VALUE
  std::string json_file_;
  bench::DurableOptions durable_opts_;
  bench::ReplayOptions replay_opts_;
  bench::FanoutOptions fanout_opts_;
  bench::ConnectOptions connect_opts_;
  bench::StormOptions storm_opts_;
  bench::FleetWorkerOptions worker_opts_;
};

}  // namespace herald::cli
