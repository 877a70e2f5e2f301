// `herald bench worker`: one worker process of a Fleet (fleet.hpp).
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/json.hpp>

#include "auth/jwt.hpp"
#include "core/clock.hpp"
#include "fleet.hpp"
#include "herald/client.hpp"
#include "progress.hpp"

namespace herald::bench {

namespace {

namespace asio = boost::asio;

// One client and what it saw. Written only on the worker's one thread.
struct Slot {
  std::shared_ptr<sdk::Client> client;
  std::int64_t start_ns = 0;
  std::int64_t first_welcome_ns = 0;
  std::int64_t last_welcome_ns = 0;
  std::int64_t complete_ns = 0;  // when the last expected message arrived
  std::uint32_t welcomes = 0;
  std::uint32_t distinct = 0;     // expected messages received
  std::vector<bool> seen;         // by k
  bool open = false;
};

// "code reason" with the numbers of the reason dropped ("1001 retry_after="), so
// that endings group by kind.
std::string ending_key(const sdk::CloseInfo& info) {
  std::string key = std::to_string(info.code) + " ";
  for (const char c : info.reason.substr(0, 60)) {
    if (c < '0' || c > '9') key += c;
  }
  return key;
}

// The clients of one worker process and their bookkeeping. Everything runs
// on the one thread of ioc_: the clients' handlers, the pacing, the
// commands read from stdin, the lines written to stdout. It knows nothing
// of scenarios: phases are the parent's commands.
class FleetWorker {
 public:
  FleetWorker(const FleetWorkerOptions& opts, std::string secret)
      : opts_(opts), secret_(std::move(secret)), input_(ioc_, ::dup(STDIN_FILENO)), pacer_(ioc_), ticker_(ioc_) {
    slots_.resize(static_cast<std::size_t>(opts_.count));
  }

  int run() {
    do_read_command();
    arm_status();
    ioc_.run();
    return 0;
  }

 private:
  // ---- commands
  void do_read_command() {
    asio::async_read_until(input_, in_buf_, '\n', [this](const boost::system::error_code& ec, std::size_t n) {
      if (ec) return do_stop();  // the parent is gone
      std::string line(asio::buffers_begin(in_buf_.data()), asio::buffers_begin(in_buf_.data()) + static_cast<std::ptrdiff_t>(n) - 1);
      in_buf_.consume(n);
      handle_command(line);
      if (!stopping_) do_read_command();
    });
  }

  void handle_command(const std::string& line) {
    const auto sp = line.find(' ');
    const std::string cmd = line.substr(0, sp);
    const std::int64_t arg = sp == std::string::npos ? 0 : std::atoll(line.c_str() + sp + 1);
    if (cmd == "connect") {
      connect_start_ns_ = mono_ns();
      pace();
    } else if (cmd == "expect") {
      expected_ = static_cast<std::uint32_t>(arg);
      for (auto& s : slots_) s.seen.resize(expected_);
    } else if (cmd == "since") {
      since_ns_ = arg;
    } else if (cmd == "report") {
      write_line(report(arg));
    } else if (cmd == "stop") {
      do_stop();
    }
  }

  // ---- connect pacing: start every client whose turn has come (open loop)
  void pace() {
    const std::int64_t now = mono_ns();
    while (started_ < slots_.size()) {
      const auto due = connect_start_ns_ + static_cast<std::int64_t>(static_cast<double>(started_) * 1e9 / opts_.rate);
      if (due > now) break;
      start_client(started_++);
    }
    if (started_ < slots_.size()) {
      pacer_.expires_after(std::chrono::milliseconds(2));
      pacer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) pace();
      });
    }
  }

  void start_client(std::size_t i) {
    Slot& slot = slots_[i];
    const std::string user = opts_.user_prefix + std::to_string(opts_.first + static_cast<int>(i));
    const std::int64_t now_s = unix_ms_now() / 1000;
    sdk::ClientOptions co;
    co.url = opts_.ws_url;
    co.token_provider = [tok = auth::sign_hs256(boost::json::object{{"sub", user}, {"iat", now_s}, {"exp", now_s + 86400}},
                                                secret_)] { return tok; };
    co.device = "d";
    co.connect_timeout = std::chrono::seconds(opts_.connect_timeout_s);
    co.local_address = opts_.local_address;
    co.jitter_seed = static_cast<std::uint64_t>(opts_.first) + i;
    slot.client = sdk::Client::create(ioc_.get_executor(), co);
    slot.client->on_welcome([this, &slot](const protocol::WelcomeFrame&) {
      const std::int64_t t = mono_ns();
      if (slot.welcomes++ == 0) {
        slot.first_welcome_ns = t;
        ++welcomed_;
      }
      slot.last_welcome_ns = t;
    });
    slot.client->on_state([this, &slot](sdk::ClientState s, const sdk::CloseInfo& info) {
      const bool open = s == sdk::ClientState::open;
      if (open && !slot.open) ++open_;
      if (!open && slot.open) --open_;
      slot.open = open;
      if (s == sdk::ClientState::waiting_to_reconnect || (s == sdk::ClientState::closed && !stopping_)) {
        ++endings_[ending_key(info)];
      }
    });
    slot.client->on_message([this, &slot](const sdk::Message& m) { on_message(slot, m); });
    slot.start_ns = mono_ns();
    slot.client->start();
  }

  void on_message(Slot& slot, const sdk::Message& m) {
    boost::system::error_code ec;
    const auto v = boost::json::parse(m.data_json, ec);
    const auto* k = !ec && v.is_object() ? v.as_object().if_contains("k") : nullptr;
    if (k == nullptr || !k->is_int64() || k->as_int64() < 0 || k->as_int64() >= static_cast<std::int64_t>(slot.seen.size())) {
      ++unexpected_;
      return;
    }
    const auto i = static_cast<std::size_t>(k->as_int64());
    if (slot.seen[i]) {
      ++duplicates_;
      return;
    }
    slot.seen[i] = true;
    ++received_;
    if (++slot.distinct == expected_) {
      slot.complete_ns = mono_ns();
      ++complete_;
    }
  }

  // ---- status and report
  void arm_status() {
    ticker_.expires_after(std::chrono::milliseconds(250));
    ticker_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      write_line(status());
      arm_status();
    });
  }

  boost::json::object status() const {
    std::uint64_t resumed = 0;
    if (since_ns_ > 0) {
      for (const auto& s : slots_) resumed += s.last_welcome_ns >= since_ns_ ? 1 : 0;
    }
    return {{"type", "status"}, {"started", started_},   {"open", open_},
            {"welcomed", welcomed_}, {"resumed", resumed}, {"received", received_},
            {"duplicates", duplicates_}, {"complete", complete_}};
  }

  boost::json::object report(std::int64_t t0) const {
    LatencyHistogram connect, resume, all;
    std::uint64_t lost = 0, redelivered = 0, reconnects = 0;
    std::int64_t first_start = 0, last_connect = 0, last_resume = 0, last_complete = 0;
    for (const auto& s : slots_) {
      if (!s.client) continue;
      if (first_start == 0 || s.start_ns < first_start) first_start = s.start_ns;
      if (s.first_welcome_ns > 0) {
        connect.record(std::chrono::nanoseconds(s.first_welcome_ns - s.start_ns));
        last_connect = std::max(last_connect, s.first_welcome_ns);
      }
      // A welcome may come between the server's readiness and the moment the
      // parent saw it (t0): `since` is what counts, t0 what latencies start from.
      if (since_ns_ > 0 && s.last_welcome_ns >= since_ns_) {
        resume.record(std::chrono::nanoseconds(s.last_welcome_ns - t0));
        last_resume = std::max(last_resume, s.last_welcome_ns);
      }
      if (since_ns_ > 0 && s.complete_ns >= since_ns_) {
        all.record(std::chrono::nanoseconds(s.complete_ns - t0));
        last_complete = std::max(last_complete, s.complete_ns);
      }
      lost += expected_ - s.distinct;
      redelivered += s.client->duplicates();
      reconnects += s.client->reconnects();
    }
    boost::json::object endings;
    for (const auto& [k, n] : endings_) endings[k] = n;
    return {{"type", "report"},
            {"clients", started_},
            {"connect", connect.to_json()},
            {"resume", resume.to_json()},
            {"all_received", all.to_json()},
            {"lost", lost},
            {"duplicates", duplicates_},
            {"unexpected", unexpected_},
            {"redelivered", redelivered},
            {"reconnects", reconnects},
            {"first_start_ns", first_start},
            {"last_connect_ns", last_connect},
            {"last_resume_ns", last_resume},
            {"last_complete_ns", last_complete},
            {"endings", std::move(endings)}};
  }

  static void write_line(const boost::json::object& o) {
    std::cout << boost::json::serialize(o) << "\n" << std::flush;
  }

  // ---- the end: close every client (1000), then let the io_context run dry
  void do_stop() {
    if (stopping_) return;
    stopping_ = true;
    pacer_.cancel();
    ticker_.cancel();
    boost::system::error_code ignored;
    input_.close(ignored);
    for (auto& s : slots_) {
      if (s.client) s.client->stop();
    }
  }

  FleetWorkerOptions opts_;
  std::string secret_;
  asio::io_context ioc_{1};
  asio::posix::stream_descriptor input_;
  asio::streambuf in_buf_;
  asio::steady_timer pacer_;
  asio::steady_timer ticker_;
  std::vector<Slot> slots_;
  std::size_t started_ = 0;
  std::int64_t connect_start_ns_ = 0;
  std::int64_t since_ns_ = 0;
  std::uint32_t expected_ = 0;
  std::uint64_t open_ = 0;
  std::uint64_t welcomed_ = 0;
  std::uint64_t received_ = 0;
  std::uint64_t duplicates_ = 0;
  std::uint64_t unexpected_ = 0;
  std::uint64_t complete_ = 0;
  std::map<std::string, std::uint64_t> endings_;
  bool stopping_ = false;
};

}  // namespace

int run_fleet_worker(const FleetWorkerOptions& opts) {
  const char* secret = std::getenv(kFleetSecretEnv);
  if (secret == nullptr || *secret == '\0') {
    std::cerr << "herald bench worker: " << kFleetSecretEnv << " is not set (workers are started by herald bench)\n";
    return 2;
  }
  if (opts.count <= 0 || opts.rate <= 0) {
    std::cerr << "herald bench worker: --count and --rate must be positive\n";
    return 2;
  }
  FleetWorker worker(opts, secret);
  return worker.run();
}

}  // namespace herald::bench
