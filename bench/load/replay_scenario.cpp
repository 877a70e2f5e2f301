// `herald bench replay`: a device with K pending messages connects.
#include <algorithm>
#include <iostream>
#include <stdexcept>

#include <boost/asio/io_context.hpp>

#include "herald/client.hpp"
#include "herald/http_api.hpp"
#include "core/ids.hpp"
#include "progress.hpp"
#include "scenarios.hpp"

namespace herald::bench {

namespace {

// Puts `count` messages in the user's inbox, 1000 per batch request.
void fill_inbox(BenchTarget& target, const std::string& user, int count) {
  for (int done = 0; done < count;) {
    const int n = std::min(1000, count - done);
    std::string body = R"({"messages":[)";
    for (int i = 0; i < n; ++i) {
      if (i > 0) body += ',';
      body += R"({"user":")" + user + R"(","data":{"n":)" + std::to_string(done + i) + R"(,"pad":"0123456789abcdef0123456789abcdef"}})";
    }
    body += "]}";
    const auto r = sdk::http_request("POST", target.url(), "/v1/publish/batch", target.api_key(), body, {},
                                     std::chrono::seconds(60));
    if (r.status != 200 || r.body.find("\"error\"") != std::string::npos) {
      throw std::runtime_error("bench replay: filling the inbox failed: " + std::to_string(r.status) + " " +
                               r.body.substr(0, 300));
    }
    done += n;
  }
}

struct ReplayRun {
  double welcome_ms = 0;
  double all_ms = 0;
  std::uint64_t received = 0;
};

ReplayRun replay_once(BenchTarget& target, const std::string& user, int count) {
  boost::asio::io_context ioc;
  sdk::ClientOptions co;
  co.url = target.ws_url();
  co.token_provider = [tok = target.token(user)] { return tok; };
  co.device = "replay";
  co.auto_reconnect = false;
  auto client = sdk::Client::create(ioc.get_executor(), co);
  ReplayRun run;
  const auto t0 = std::chrono::steady_clock::now();
  auto since = [&] { return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(); };
  client->on_welcome([&](const protocol::WelcomeFrame&) { run.welcome_ms = since(); });
  client->on_message([&](const sdk::Message&) {
    if (++run.received == static_cast<std::uint64_t>(count)) {
      run.all_ms = since();
      client->stop();
    }
  });
  client->on_state([&](sdk::ClientState s, const sdk::CloseInfo& info) {
    if (s == sdk::ClientState::closed && run.received < static_cast<std::uint64_t>(count)) {
      std::cerr << "bench replay: connection ended after " << run.received << " messages: " << info.code << " "
                << info.reason << "\n";
    }
  });
  client->start();
  ioc.run();
  return run;
}

}  // namespace

void run_replay(const TargetOptions& target, const ReplayOptions& opts, BenchReport& report) {
  BenchTarget t(target, {{"HERALD_STORE", opts.store},
                         {"HERALD_SYNC", opts.sync},
                         {"HERALD_RETENTION_MAX_MESSAGES", std::to_string(std::max(10000, opts.messages))}});
  LatencyHistogram all;
  LatencyHistogram welcome;
  std::vector<double> times;
  std::uint64_t short_runs = 0;
  for (int i = 0; i < std::max(1, opts.runs); ++i) {
    const std::string user = "replay-" + random_hex(4);
    std::cerr << "replay run " << (i + 1) << "/" << opts.runs << ": filling " << opts.messages << " messages... "
              << std::flush;
    fill_inbox(t, user, opts.messages);
    const ReplayRun r = replay_once(t, user, opts.messages);
    std::cerr << "welcome after " << format_number(r.welcome_ms) << " ms, all " << r.received << " after "
              << format_number(r.all_ms) << " ms\n";
    if (r.received < static_cast<std::uint64_t>(opts.messages)) ++short_runs;
    times.push_back(r.all_ms);
    all.record(std::chrono::nanoseconds(static_cast<std::int64_t>(r.all_ms * 1e6)));
    welcome.record(std::chrono::nanoseconds(static_cast<std::int64_t>(r.welcome_ms * 1e6)));
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  BenchRow row;
  row.scenario = "replay";
  row.params = {{"store", opts.store}, {"sync", opts.sync}, {"messages", std::to_string(opts.messages)},
                {"runs", std::to_string(opts.runs)}};
  row.values = {{"median_ms", median},
                {"best_ms", times.front()},
                {"median_msgs_per_s", median > 0 ? opts.messages / (median / 1000) : 0},
                {"incomplete_runs", static_cast<double>(short_runs)}};
  row.latencies = {{"connect -> welcome", welcome}, {"connect -> all received", all}};
  report.add(std::move(row));
}

}  // namespace herald::bench
