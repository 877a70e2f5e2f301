// `herald bench fanout`: connected devices, open-loop publishers.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "herald/client.hpp"
#include "herald/http_api.hpp"
#include "http_pool.hpp"
#include "proc_stats.hpp"
#include "progress.hpp"
#include "scenarios.hpp"

namespace herald::bench {

namespace {

using clock = std::chrono::steady_clock;

// What the receivers saw, written on the clients' thread.
struct Receipts {
  std::mutex mu;
  int run = 0;  // the run being measured; messages of other runs are ignored
  std::int64_t window_start_ns = 0;
  std::uint64_t received = 0;
  LatencyHistogram latency;  // intended publish time -> handed to the application
};

// {"r":run,"t":intended_ns,"pad":"..."}
std::string data_json(int run, std::int64_t t, const std::string& pad) {
  return R"({"r":)" + std::to_string(run) + R"(,"t":)" + std::to_string(t) + R"(,"pad":")" + pad + R"("})";
}

void on_message(Receipts& receipts, const sdk::Message& m) {
  const std::int64_t now = mono_ns();
  boost::system::error_code ec;
  const auto v = boost::json::parse(m.data_json, ec);
  if (ec || !v.is_object()) return;
  const auto& o = v.as_object();
  const auto* r = o.if_contains("r");
  const auto* t = o.if_contains("t");
  if (r == nullptr || t == nullptr || !r->is_int64() || !t->is_int64()) return;
  std::lock_guard lock(receipts.mu);
  if (r->as_int64() != receipts.run) return;
  ++receipts.received;
  if (t->as_int64() >= receipts.window_start_ns) receipts.latency.record(std::chrono::nanoseconds(now - t->as_int64()));
}

boost::json::value fetch_stats(const BenchTarget& t) {
  const auto res = sdk::http_request("GET", t.url(), "/v1/stats", t.api_key());
  boost::system::error_code ec;
  auto stats = boost::json::parse(res.body, ec);
  return ec ? boost::json::value() : stats;
}

// Quantile q of a /v1/stats latency histogram over the observations made
// between two snapshots (its cumulative bucket counts subtracted), in ms,
// interpolated inside the bucket as Prometheus's histogram_quantile does;
// -1 when either snapshot lacks it or nothing was observed in between.
double window_ms(const boost::json::value& before, const boost::json::value& after, const char* hist, double q) {
  const auto histogram = [hist](const boost::json::value& stats) -> const boost::json::object* {
    const auto* o = stats.if_object();
    const auto* h = o != nullptr ? o->if_contains(hist) : nullptr;
    return h != nullptr ? h->if_object() : nullptr;
  };
  const auto* a = histogram(before);
  const auto* b = histogram(after);
  if (a == nullptr || b == nullptr) return -1;
  const auto* bounds = b->if_contains("bounds_ms");
  const auto* ca = a->if_contains("cumulative_counts");
  const auto* cb = b->if_contains("cumulative_counts");
  if (bounds == nullptr || ca == nullptr || cb == nullptr || !bounds->is_array() || !ca->is_array() ||
      !cb->is_array() || ca->as_array().size() != cb->as_array().size() ||
      cb->as_array().size() != bounds->as_array().size() + 1) {
    return -1;
  }
  const auto& ub = bounds->as_array();
  std::vector<double> counts;  // cumulative, within the window
  for (std::size_t i = 0; i < cb->as_array().size(); ++i) {
    counts.push_back(cb->as_array()[i].to_number<double>() - ca->as_array()[i].to_number<double>());
  }
  const double total = counts.back();
  if (total <= 0) return -1;
  const double rank = q * total;
  for (std::size_t i = 0; i < ub.size(); ++i) {
    if (counts[i] < rank) continue;
    const double lower = i == 0 ? 0 : ub[i - 1].to_number<double>();
    const double below = i == 0 ? 0 : counts[i - 1];
    const double in_bucket = counts[i] - below;
    return lower + (ub[i].to_number<double>() - lower) * (in_bucket > 0 ? (rank - below) / in_bucket : 1);
  }
  return ub.back().to_number<double>();  // in the +Inf bucket: at least the last bound
}

}  // namespace

void run_fanout(const TargetOptions& target, const FanoutOptions& opts, BenchReport& report) {
  const int users = std::max(1, opts.connections / std::max(1, opts.devices_per_user));
  BenchTarget t(target, {{"HERALD_STORE", opts.store},
                         {"HERALD_SYNC", opts.sync},
                         {"HERALD_MAX_CONNECTIONS_PER_IP", std::to_string(opts.connections + 1000)},
                         {"HERALD_MAX_CONNECTIONS_PER_USER", std::to_string(opts.devices_per_user + 4)}});

  // ---- the devices, on a thread of their own
  boost::asio::io_context clients_ioc;
  auto guard = boost::asio::make_work_guard(clients_ioc);
  std::thread clients_thread([&] { clients_ioc.run(); });
  Receipts receipts;
  std::atomic<int> open{0};
  std::vector<std::shared_ptr<sdk::Client>> clients;
  std::cerr << "fanout: connecting " << opts.connections << " devices of " << users << " users to " << t.describe()
            << "\n";
  const auto connect_start = clock::now();
  for (int i = 0; i < opts.connections; ++i) {
    const std::string user = "fan-" + std::to_string(i % users);
    sdk::ClientOptions co;
    co.url = t.ws_url();
    co.token_provider = [tok = t.token(user)] { return tok; };
    co.device = "d" + std::to_string(i / users);
    co.connect_timeout = std::chrono::seconds(30);
    auto c = sdk::Client::create(clients_ioc.get_executor(), co);
    c->on_message([&receipts](const sdk::Message& m) { on_message(receipts, m); });
    c->on_state([&open](sdk::ClientState s, const sdk::CloseInfo&) {
      if (s == sdk::ClientState::open) open.fetch_add(1);
    });
    c->start();
    clients.push_back(std::move(c));
    if (i % 500 == 499) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // ease the accept queue
  }
  while (open.load() < opts.connections && clock::now() - connect_start < std::chrono::seconds(120)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const double connect_s = std::chrono::duration<double>(clock::now() - connect_start).count();
  std::cerr << "fanout: " << open.load() << " open after " << format_number(connect_s) << " s\n";

  const std::string pad(static_cast<std::size_t>(std::max(0, opts.data_bytes - 40)), 'x');
  int run_id = 0;
  for (const double rate : opts.rates) {
    ++run_id;
    boost::asio::io_context ioc;
    HttpPool pool(ioc, t.url(), t.api_key(), static_cast<std::size_t>(opts.http_connections));
    std::mt19937_64 rng(static_cast<std::uint64_t>(run_id));
    std::uniform_int_distribution<int> pick(0, users - 1);
    LatencyHistogram publish_latency;
    std::uint64_t issued = 0, accepted = 0, refused = 0, failed = 0, answered = 0;
    const std::int64_t start_ns = mono_ns();
    const std::int64_t window_ns = start_ns + static_cast<std::int64_t>(opts.warmup_s * 1e9);
    const auto total = static_cast<std::uint64_t>(std::llround(rate * (opts.warmup_s + opts.duration_s)));
    {
      std::lock_guard lock(receipts.mu);
      receipts.run = run_id;
      receipts.window_start_ns = window_ns;
      receipts.received = 0;
      receipts.latency = LatencyHistogram();
    }

    // Open loop: each tick issues every publish whose intended time has
    // come, stamped with that time (not the time it is actually sent).
    // With a linger, each tick sends what fell due since the last one as
    // one batch request; the latency of each message still counts from its
    // own intended time, so the linger is part of what is measured.
    boost::asio::steady_timer ticker(ioc);
    const bool linger = opts.linger_ms > 0;
    const auto tick_every = linger ? std::chrono::microseconds(static_cast<std::int64_t>(opts.linger_ms * 1000))
                                   : std::chrono::microseconds(500);
    std::function<void()> tick = [&] {
      const std::int64_t now = mono_ns();
      std::string batch_body;
      std::vector<std::int64_t> batch_intended;
      auto flush = [&] {
        if (batch_intended.empty()) return;
        batch_body = R"({"messages":[)" + batch_body + "]}";
        pool.submit("/v1/publish/batch", std::move(batch_body),
                    [&, intended = std::move(batch_intended)](const HttpResult& r) {
                      const auto n = static_cast<int>(intended.size());
                      answered += static_cast<std::uint64_t>(n);
                      if (r.status != 200) {
                        (r.status == 0 ? failed : refused) += static_cast<std::uint64_t>(n);
                        return;
                      }
                      const int errors = count_batch_item_errors(r.body, n);
                      refused += static_cast<std::uint64_t>(errors);
                      accepted += static_cast<std::uint64_t>(n - errors);
                      const std::int64_t done = mono_ns();
                      for (const auto at : intended) {
                        if (at >= window_ns) publish_latency.record(std::chrono::nanoseconds(done - at));
                      }
                    });
        batch_body.clear();
        batch_intended = {};
      };
      while (issued < total) {
        const std::int64_t intended = start_ns + static_cast<std::int64_t>(static_cast<double>(issued) * 1e9 / rate);
        if (intended > now) break;
        ++issued;
        const std::string user = "fan-" + std::to_string(pick(rng));
        std::string body = R"({"user":")" + user + R"(","data":)" + data_json(run_id, intended, pad) + "}";
        if (linger) {
          if (!batch_intended.empty()) batch_body += ',';
          batch_body += body;
          batch_intended.push_back(intended);
          if (batch_intended.size() == 1000) flush();
          continue;
        }
        pool.submit("/v1/publish", std::move(body), [&, intended](const HttpResult& r) {
          ++answered;
          if (r.status == 200) {
            ++accepted;
            if (intended >= window_ns) publish_latency.record(std::chrono::nanoseconds(mono_ns() - intended));
          } else if (r.status == 0) {
            ++failed;
          } else {
            ++refused;
          }
        });
      }
      flush();
      if (issued < total) {
        ticker.expires_after(tick_every);
        ticker.async_wait([&](const boost::system::error_code& ec) {
          if (!ec) tick();
        });
      }
    };
    Progress progress(ioc, [&] {
      std::uint64_t got;
      {
        std::lock_guard lock(receipts.mu);
        got = receipts.received;
      }
      return "fanout rate=" + format_number(rate) + "/s: " + format_number(std::round((mono_ns() - start_ns) / 1e8) / 10) +
             " s, issued " + std::to_string(issued) + ", accepted " + std::to_string(accepted) + ", received " +
             std::to_string(got) + ", queued " + std::to_string(pool.waiting());
    });
    boost::asio::steady_timer done_check(ioc);
    std::function<void()> check = [&] {
      done_check.expires_after(std::chrono::milliseconds(50));
      done_check.async_wait([&](const boost::system::error_code& ec) {
        if (ec) return;
        if (issued == total && answered == total) {
          progress.stop();
          pool.close();
          return;
        }
        check();
      });
    };
    RunCpu cpu(t.spawned() != nullptr ? t.spawned()->pid() : 0);
    // The server's own histograms over the measured window: a snapshot when
    // the warm-up ends (off the publisher's thread, which must keep time)
    // and one after the drain.
    boost::json::value stats_before;
    std::thread snapshot([&] {
      std::this_thread::sleep_for(std::chrono::nanoseconds(std::max<std::int64_t>(0, window_ns - mono_ns())));
      stats_before = fetch_stats(t);
    });
    tick();
    check();
    ioc.run();

    // Stragglers: wait until every accepted message reached every device, or drain_s.
    const std::uint64_t expected = accepted * static_cast<std::uint64_t>(opts.devices_per_user);
    const auto drain_deadline = clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(opts.drain_s));
    for (;;) {
      {
        std::lock_guard lock(receipts.mu);
        if (receipts.received >= expected) break;
      }
      if (clock::now() >= drain_deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    cpu.finish();
    LatencyHistogram delivered;
    std::uint64_t received;
    {
      std::lock_guard lock(receipts.mu);
      delivered = receipts.latency;
      received = receipts.received;
    }
    snapshot.join();
    const auto stats = fetch_stats(t);
    std::uint64_t duplicates = 0;
    for (const auto& c : clients) duplicates += c->duplicates();

    BenchRow row;
    row.scenario = "fanout";
    row.params = {{"store", opts.store}, {"sync", opts.sync}, {"connections", std::to_string(opts.connections)},
                  {"devices_per_user", std::to_string(opts.devices_per_user)}, {"rate", format_number(rate)},
                  {"linger_ms", format_number(opts.linger_ms)}, {"duration_s", format_number(opts.duration_s)}};
    row.values = {{"open_connections", static_cast<double>(open.load())},
                  {"connect_s", connect_s},
                  {"accepted", static_cast<double>(accepted)},
                  {"refused", static_cast<double>(refused)},
                  {"failed", static_cast<double>(failed)},
                  {"expected_deliveries", static_cast<double>(expected)},
                  {"received", static_cast<double>(received)},
                  {"missing", static_cast<double>(expected > received ? expected - received : 0)},
                  {"duplicates_dropped_by_sdk", static_cast<double>(duplicates)}};
    // Where the time goes on the server's side: each publish request, and
    // from a publish accepted to its frame queued on the device's socket.
    for (const auto& [name, hist] : {std::pair{"server_publish", "publish_latency"},
                                     std::pair{"server_push", "push_latency"},
                                     std::pair{"server_ack", "ack_latency"}}) {
      for (const auto& [suffix, q] : {std::pair{"_p50_ms", 0.5}, std::pair{"_p99_ms", 0.99}}) {
        row.values.emplace_back(std::string(name) + "_latency" + suffix, window_ms(stats_before, stats, hist, q));
      }
    }
    if (t.spawned() != nullptr) row.values.emplace_back("server_rss_mib", t.spawned()->rss_bytes() / 1048576.0);
    cpu.add_values(row.values, received);
    row.latencies = {{"publish -> client", delivered}, {"publish -> 200", publish_latency}};
    report.add(std::move(row));
    if (open.load() == 0) report.problem("fanout: no device connected to " + t.describe());
    if (accepted == 0) report.problem("fanout rate=" + format_number(rate) + ": no publish was accepted");
  }

  for (auto& c : clients) c->stop();
  guard.reset();
  clients_thread.join();
}

}  // namespace herald::bench
