// `herald bench storm`: the server restarts under N connected clients.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "fleet.hpp"
#include "herald/http_api.hpp"
#include "http_pool.hpp"
#include "progress.hpp"
#include "scenarios.hpp"

namespace herald::bench {

namespace {

struct PublishResult {
  std::uint64_t requests = 0;
  std::uint64_t failed = 0;  // requests not answered 200, or with an error item
  double seconds = 0;
};

// Publishes {"k":k} to every fleet user, for each k in [first_k, end_k): one
// request per 1000 users (PROTOCOL.md 7 `users`), `http_connections` at a time.
PublishResult publish_to_all(BenchTarget& t, const std::string& prefix, int users, int first_k, int end_k,
                             int http_connections) {
  boost::asio::io_context ioc;
  HttpPool pool(ioc, t.url(), t.api_key(), static_cast<std::size_t>(std::max(1, http_connections)));
  PublishResult r;
  std::uint64_t answered = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int k = first_k; k < end_k; ++k) {
    for (int u0 = 0; u0 < users; u0 += 1000) {
      std::string body = R"({"users":[)";
      for (int u = u0; u < std::min(users, u0 + 1000); ++u) {
        if (u > u0) body += ',';
        body += '"' + prefix + std::to_string(u) + '"';
      }
      body += R"(],"data":{"k":)" + std::to_string(k) + "}}";
      ++r.requests;
      pool.submit("/v1/publish", std::move(body), [&](const HttpResult& res) {
        if (res.status != 200 || res.body.find("\"error\"") != std::string::npos) {
          if (r.failed++ == 0) std::cerr << "storm: publish failed: " << res.status << " " << res.body.substr(0, 200) << "\n";
        }
        if (++answered == r.requests) boost::asio::post(ioc, [&] { pool.close(); });
      });
    }
  }
  if (r.requests == 0) return r;
  ioc.run();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

// A counter of the server's /metrics (no labels); -1 when absent.
double server_counter(BenchTarget& t, const std::string& name) {
  const auto res = sdk::http_request("GET", t.url(), "/metrics", t.api_key());
  const auto at = res.body.find("\n" + name + " ");
  if (res.status != 200 || at == std::string::npos) return -1;
  return std::strtod(res.body.c_str() + at + name.size() + 2, nullptr);
}

double since_s(std::int64_t from_ns, std::int64_t to_ns) { return to_ns > from_ns ? (to_ns - from_ns) / 1e9 : 0; }

}  // namespace

void run_storm(const TargetOptions& target, const StormOptions& opts, BenchReport& report) {
  const int n = opts.connections;
  const int total_k = opts.messages_before + opts.messages_after;
  BenchTarget t(target, {{"HERALD_STORE", opts.store},
                         {"HERALD_SYNC", opts.sync},
                         {"HERALD_MAX_CONNECTIONS", std::to_string(n + 1000)},
                         {"HERALD_MAX_CONNECTIONS_PER_IP", std::to_string(n + 1000)},
                         {"HERALD_MAX_CONNECTIONS_PER_USER", "4"}});
  SpawnedServer* server = t.spawned();
  if (server == nullptr) throw std::runtime_error("storm restarts the server: it cannot run against --url");
  if (opts.store == "memory") std::cerr << "storm: the memory store starts a new epoch at each start: expect losses\n";

  FleetOptions fo;
  fo.binary = target.binary;
  fo.ws_url = t.ws_url();
  fo.secret = t.secret();
  fo.clients = n;
  fo.per_worker = opts.per_worker;
  fo.rate = opts.rate;
  fo.user_prefix = "storm-";
  Fleet fleet(fo);
  const auto timeout = std::chrono::milliseconds(static_cast<std::int64_t>(opts.timeout_s * 1000));
  const auto count_line = [](const char* what, std::uint64_t v) { return std::string(", ") + what + " " + std::to_string(v); };

  // ---- connected, each has received and acked some messages
  std::cerr << "storm: " << n << " clients from " << fleet.workers() << " worker processes to " << t.describe() << "\n";
  fleet.command("expect " + std::to_string(total_k));
  fleet.command("connect");
  if (!fleet.wait_for([&](const FleetStatus& s) { return s.open >= static_cast<std::uint64_t>(n); }, timeout,
                      [&](const FleetStatus& s) { return "storm connect" + count_line("open", s.open); })) {
    throw std::runtime_error("storm: not every client connected");
  }
  const PublishResult before = publish_to_all(t, fo.user_prefix, n, 0, opts.messages_before, opts.http_connections);
  const auto want_before = static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(opts.messages_before);
  if (!fleet.wait_for([&](const FleetStatus& s) { return s.received >= want_before; }, timeout,
                      [&](const FleetStatus& s) { return "storm before restart" + count_line("received", s.received); })) {
    std::cerr << "storm: not every message published before the restart arrived; going on (they count as lost)\n";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the acks reach the server

  // ---- the restart
  std::cerr << "storm: " << (opts.kill ? "SIGKILL" : "SIGTERM") << " to the server, then start it again\n";
  const double redelivered_before = server_counter(t, "herald_messages_redelivered_total");
  const std::int64_t down_ns = mono_ns();
  if (opts.kill) {
    server->kill();
  } else {
    server->stop();
  }
  const std::int64_t stopped_ns = mono_ns();
  // Any welcome from here on comes from the new server.
  fleet.command("since " + std::to_string(stopped_ns));
  server->start();
  const std::int64_t ready_ns = mono_ns();  // the ready file seen (polled every 5 ms)
  const PublishResult after = publish_to_all(t, fo.user_prefix, n, opts.messages_before, total_k, opts.http_connections);
  const bool done = fleet.wait_for(
      [&](const FleetStatus& s) {
        return s.resumed >= static_cast<std::uint64_t>(n) && s.complete >= static_cast<std::uint64_t>(n);
      },
      timeout,
      [&](const FleetStatus& s) {
        return "storm after restart: " + format_number(std::round((mono_ns() - ready_ns) / 1e8) / 10) + " s" +
               count_line("resumed", s.resumed) + count_line("complete", s.complete) +
               count_line("received", s.received) + count_line("duplicates", s.duplicates);
      });
  if (!done) std::cerr << "storm: not every client resumed and received everything within the timeout\n";
  const FleetReport r = fleet.report(ready_ns);
  // A client that was replaced (4011) by an attempt of its own that it had
  // given up on (connect_timeout) stops for good, as PROTOCOL.md 6 says.
  const FleetStatus end = fleet.status();
  // Sends with attempt > 1 (ack timeouts) by both servers, to set against
  // the frames the clients dropped as already processed.
  const double server_redelivered =
      std::max(0.0, redelivered_before) + server_counter(t, "herald_messages_redelivered_total");
  fleet.stop();
  std::uint64_t failed_attempts = 0;
  for (const auto& [k, c] : r.endings) {
    failed_attempts += c;
    std::cerr << "storm: " << c << " connection attempts ended with " << k << "\n";
  }

  BenchRow row;
  row.scenario = "storm";
  row.params = {{"store", opts.store}, {"sync", opts.sync}, {"connections", std::to_string(n)},
                {"restart", opts.kill ? "SIGKILL" : "SIGTERM"}, {"workers", std::to_string(fleet.workers())},
                {"messages_before", std::to_string(opts.messages_before)},
                {"messages_after", std::to_string(opts.messages_after)}};
  row.values = {{"clients", static_cast<double>(r.clients)},
                {"server_stop_s", since_s(down_ns, stopped_ns)},
                {"server_start_s", since_s(stopped_ns, ready_ns)},
                {"resumed", static_cast<double>(r.resume.count())},
                {"open_at_end", static_cast<double>(end.open)},
                {"all_resumed_s", since_s(ready_ns, r.last_resume_ns)},
                {"publish_after_s", after.seconds},
                {"all_received_s", since_s(ready_ns, r.last_complete_ns)},
                {"messages_expected", static_cast<double>(n) * total_k},
                {"lost", static_cast<double>(r.lost)},
                {"duplicates", static_cast<double>(r.duplicates)},
                {"redelivered_frames", static_cast<double>(r.redelivered)},
                {"server_redelivered", server_redelivered},
                {"ended_attempts", static_cast<double>(failed_attempts)},
                {"publish_failures", static_cast<double>(before.failed + after.failed)}};
  row.latencies = {{"ready -> welcome", r.resume}, {"ready -> all messages", r.all_received},
                   {"first connect -> welcome", r.connect}};
  report.add(std::move(row));
}

}  // namespace herald::bench
