// `herald bench durable`: closed-loop publishers against each sync policy.
#include <algorithm>
#include <cmath>
#include <functional>
#include <random>


#include "http_pool.hpp"
#include "progress.hpp"
#include "scenarios.hpp"

namespace herald::bench {

namespace {

// with_id: the publisher chooses the id (an idempotency key the store
// must index), unique across runs and rows; without it the server
// generates one.
std::string publish_body(const std::string& user, std::uint64_t n, const std::string& pad, bool with_id) {
  static const std::string run = std::to_string(std::random_device{}());
  static std::uint64_t ids = 0;  // the scenario runs on one thread
  std::string id = with_id ? R"("id":"bench-)" + run + "-" + std::to_string(++ids) + R"(",)" : std::string();
  return R"({"user":")" + user + R"(",)" + id + R"("data":{"n":)" + std::to_string(n) + R"(,"pad":")" + pad +
         R"("}})";
}

BenchRow run_one(BenchTarget& target, const DurableOptions& opts, const std::string& sync, int publishers) {
  boost::asio::io_context ioc;
  HttpPool pool(ioc, target.url(), target.api_key(), static_cast<std::size_t>(publishers));
  const std::string pad(static_cast<std::size_t>(std::max(0, opts.data_bytes - 24)), 'x');
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int> pick(0, std::max(1, opts.users) - 1);

  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto window_start = start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(opts.warmup_s));
  const auto end = window_start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(opts.duration_s));
  LatencyHistogram latency;
  // Counted in messages; a request is one message, or `batch` of them.
  std::uint64_t sent = 0, ok = 0, in_window = 0, refused = 0, failed = 0;
  const int batch = std::max(1, opts.batch);

  std::function<void()> next = [&] {
    if (clock::now() >= end) return;
    const auto at = clock::now();
    std::string body;
    if (batch == 1) {
      body = publish_body("durable-" + std::to_string(pick(rng)), ++sent, pad, opts.ids);
    } else {
      body = R"({"messages":[)";
      for (int i = 0; i < batch; ++i) {
        if (i > 0) body += ',';
        body += publish_body("durable-" + std::to_string(pick(rng)), ++sent, pad, opts.ids);
      }
      body += "]}";
    }
    pool.submit(batch == 1 ? "/v1/publish" : "/v1/publish/batch", std::move(body), [&, at](const HttpResult& r) {
      const auto done = clock::now();
      if (r.status == 200) {
        // A batch answers 200 with a result per item; a refused item is an error object.
        const auto item_errors = batch == 1 ? 0 : count_batch_item_errors(r.body, batch);
        ok += batch - item_errors;
        refused += item_errors;
        if (done >= window_start && done < end) {
          in_window += batch - item_errors;
          latency.record(done - at);
        }
      } else if (r.status == 0) {
        failed += batch;
      } else {
        refused += batch;
      }
      next();
    });
  };
  for (int i = 0; i < publishers; ++i) next();
  Progress progress(ioc, [&] {
    const double t = std::chrono::duration<double>(clock::now() - start).count();
    return "durable sync=" + sync + " publishers=" + std::to_string(publishers) + ": " +
           format_number(std::round(t * 10) / 10) + " s, " + std::to_string(ok) + " accepted, " +
           std::to_string(refused) + " refused";
  });
  // The progress timer keeps the context alive: stop it when the last
  // publish of the window is answered.
  boost::asio::steady_timer stop_at(ioc);
  stop_at.expires_at(end + std::chrono::seconds(30));
  stop_at.async_wait([&](const boost::system::error_code&) { progress.stop(); pool.close(); });
  std::function<void()> poll;
  boost::asio::steady_timer poller(ioc);
  poll = [&] {
    poller.expires_after(std::chrono::milliseconds(50));
    poller.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      if (clock::now() >= end && pool.waiting() == 0 && ok + refused + failed == sent) {
        progress.stop();
        stop_at.cancel();
        pool.close();
        return;
      }
      poll();
    });
  };
  poll();
  ioc.run();

  BenchRow row;
  row.scenario = "durable";
  row.params = {{"store", opts.store}, {"sync", sync}, {"publishers", std::to_string(publishers)},
                {"batch", std::to_string(batch)}, {"ids", opts.ids ? "publisher" : "generated"},
                {"data_bytes", std::to_string(opts.data_bytes)}, {"duration_s", format_number(opts.duration_s)}};
  row.values = {{"accepted_per_s", static_cast<double>(in_window) / opts.duration_s},
                {"accepted", static_cast<double>(ok)},
                {"refused", static_cast<double>(refused)},
                {"failed", static_cast<double>(failed)}};
  row.latencies = {{"publish -> 200", latency}};
  return row;
}

}  // namespace

void run_durable(const TargetOptions& target, const DurableOptions& opts, BenchReport& report) {
  for (const auto& sync : opts.syncs) {
    BenchTarget t(target, {{"HERALD_STORE", opts.store}, {"HERALD_SYNC", sync}});
    for (const int p : opts.publishers) {
      BenchRow row = run_one(t, opts, sync, p);
      const auto accepted = std::find_if(row.values.begin(), row.values.end(),
                                         [](const auto& v) { return v.first == "accepted"; });
      if (accepted != row.values.end() && accepted->second == 0) {
        report.problem("durable sync=" + sync + " publishers=" + std::to_string(p) + ": no publish was accepted");
      }
      report.add(std::move(row));
    }
  }
}

}  // namespace herald::bench
