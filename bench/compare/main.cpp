// herald-compare: the peers' side of bench/compare (run.sh starts the peer
// servers and runs this and `herald bench` on the same scenarios).
//
//   herald-compare mosquitto fanout --port 1883 --pid PID --rate 2000,10000,20000 --json out.json
//   herald-compare nats connect --port 4222 --pid PID --connections 19000
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "peers.hpp"

namespace compare = herald::bench::compare;

int main(int argc, char** argv) {
  CLI::App app{"Runs Herald's bench scenarios against Mosquitto or NATS JetStream (bench/compare)"};
  std::string peer;
  std::string json_file;
  compare::PeerServer server;
  compare::FanoutOptions fanout_opts;
  compare::ConnectOptions connect_opts;
  app.add_option("peer", peer, "mosquitto or nats")->required()->check(CLI::IsMember({"mosquitto", "nats"}));
  app.add_option("--host", server.host, "peer server address")->capture_default_str();
  app.add_option("--port", server.port, "peer server port")->required();
  app.add_option("--pid", server.pid, "peer server process, for its memory");
  app.add_option("--json", json_file, "also write the results as JSON to this file");
  app.require_subcommand(1);

  auto* fanout = app.add_subcommand("fanout", "connected devices, open-loop publishers");
  fanout->add_option("--connections", fanout_opts.connections, "connected devices")->capture_default_str();
  fanout->add_option("--rate", fanout_opts.rates, "messages per second, one run each")->delimiter(',')->capture_default_str();
  fanout->add_option("--publishers", fanout_opts.publishers, "publishing connections")->capture_default_str();
  fanout->add_option("--data-bytes", fanout_opts.data_bytes, "size of each message's data")->capture_default_str();
  fanout->add_option("--warmup", fanout_opts.warmup_s, "seconds not measured")->capture_default_str();
  fanout->add_option("--duration", fanout_opts.duration_s, "seconds measured")->capture_default_str();
  fanout->add_option("--drain", fanout_opts.drain_s, "longest wait for stragglers")->capture_default_str();
  fanout->add_option("--local-address", fanout_opts.local_addresses, "source addresses of the devices")
      ->delimiter(',')
      ->capture_default_str();

  auto* connect = app.add_subcommand("connect", "idle connections, what they cost the server");
  connect->add_option("--connections", connect_opts.connections, "idle connections")->capture_default_str();
  connect->add_option("--rate", connect_opts.rate, "connections started per second")->capture_default_str();
  connect->add_option("--processes", connect_opts.processes, "client processes")->capture_default_str();
  connect->add_option("--warmup-connections", connect_opts.warmup_connections, "opened and closed before the baseline")
      ->capture_default_str();
  connect->add_option("--hold", connect_opts.hold_s, "idle seconds before memory is read")->capture_default_str();

  CLI11_PARSE(app, argc, argv);

  herald::bench::BenchReport report;
  try {
    if (peer == "mosquitto" && fanout->parsed()) compare::run_mosquitto_fanout(server, fanout_opts, report);
    if (peer == "mosquitto" && connect->parsed()) compare::run_mosquitto_connect(server, connect_opts, report);
    if (peer == "nats" && fanout->parsed()) compare::run_nats_fanout(server, fanout_opts, report);
    if (peer == "nats" && connect->parsed()) compare::run_nats_connect(server, connect_opts, report);
  } catch (const std::exception& e) {
    std::cerr << "herald-compare: " << e.what() << "\n";
    return 1;
  }
  report.print(std::cout);
  if (!json_file.empty()) {
    std::ofstream out(json_file);
    out << boost::json::serialize(report.json()) << "\n";
    if (!out) {
      std::cerr << "herald-compare: cannot write " << json_file << "\n";
      return 1;
    }
  }
  return 0;
}
