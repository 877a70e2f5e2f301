// The Mosquitto peer of bench/compare: Herald's fanout and connect scenarios
// (bench/load/fanout_scenario.cpp, connect_scenario.cpp) over MQTT 3.1.1
// through libmosquitto, against a running mosquitto 2.0 configured by
// bench/compare/mosquitto.conf.in.
//
// A device is an MQTT client with a persistent session (clean_session=false)
// subscribed with QoS 1 to its user's topic "u/<user>"; a publish is a QoS 1
// PUBLISH to that topic, accepted when its PUBACK arrives. libmosquitto's
// own threads are not used: all the clients of a thread are in one epoll
// set, read with mosquitto_loop_read() when readable, written with
// mosquitto_loop_write() while mosquitto_want_write(), kept alive with
// mosquitto_loop_misc() (keepalive 300 s, so idle clients are not pinged
// during a run).
#include <fcntl.h>
#include <mosquitto.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/json.hpp>

#include "mosquitto_clients.hpp"
#include "peers.hpp"
#include "proc_stats.hpp"
#include "progress.hpp"
#include "receipts.hpp"

namespace herald::bench::compare {

namespace {

using namespace mqtt;  // the client pool (mosquitto_clients.hpp)

// ---------------------------------------------------------------- fanout

class DeviceEvents : public Events {
 public:
  explicit DeviceEvents(Receipts& r) : r_(r) {}
  void message(Client&, const mosquitto_message& msg) override {
    r_.record(std::string_view(static_cast<const char*>(msg.payload), static_cast<std::size_t>(std::max(0, msg.payloadlen))),
              mono_ns());
  }

 private:
  Receipts& r_;
};

// The publishers' side of a run, on the main thread.
class PublisherEvents : public Events {
 public:
  struct Pending {
    std::uint64_t k;
    std::int64_t intended_ns;
  };
  struct Queued {
    std::uint64_t k;
    std::int64_t intended_ns;
    int user;
  };

  void reset(std::size_t publishers, std::uint64_t total, std::int64_t window_ns) {
    pending.assign(publishers, {});
    queued.assign(publishers, {});
    acked.assign((total + 63) / 64, 0);
    accepted = failed = answered = 0;
    window_ns_ = window_ns;
    latency = LatencyHistogram();
  }
  void puback(Client& c, int mid) override {
    auto& p = pending[c.index];
    const auto it = p.find(mid);
    if (it == p.end()) return;
    ++accepted;
    ++answered;
    acked[it->second.k / 64] |= std::uint64_t{1} << (it->second.k % 64);
    if (it->second.intended_ns >= window_ns_) latency.record(std::chrono::nanoseconds(mono_ns() - it->second.intended_ns));
    p.erase(it);
  }
  void lost(Client& c) override { give_up(c.index); }
  void give_up(std::size_t publisher) {
    const std::uint64_t n = pending[publisher].size() + queued[publisher].size();
    failed += n;
    answered += n;
    pending[publisher].clear();
    queued[publisher].clear();
  }
  std::uint64_t in_flight() const {
    std::uint64_t n = 0;
    for (const auto& p : pending) n += p.size();
    return n;
  }
  std::uint64_t waiting() const {
    std::uint64_t n = 0;
    for (const auto& q : queued) n += q.size();
    return n;
  }

  std::vector<std::unordered_map<int, Pending>> pending;  // per publisher, by message id
  std::vector<std::deque<Queued>> queued;                 // per publisher, not yet handed to libmosquitto
  std::vector<std::uint64_t> acked;                        // bit k: message k PUBACKed
  std::uint64_t accepted = 0, failed = 0, answered = 0;
  LatencyHistogram latency;  // intended publish time -> PUBACK

 private:
  std::int64_t window_ns_ = 0;
};

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

void set_ticker(int tfd, std::int64_t interval_ns) {
  itimerspec its{};
  its.it_interval.tv_nsec = interval_ns;
  its.it_value.tv_nsec = interval_ns;
  ::timerfd_settime(tfd, 0, &its, nullptr);
}

}  // namespace

void run_mosquitto_fanout(const PeerServer& server, const FanoutOptions& opts, BenchReport& report) {
  if (opts.connections <= 0 || opts.publishers <= 0 || opts.rates.empty() || opts.local_addresses.empty()) {
    throw std::runtime_error("fanout: --connections, --publishers, --rate and --local-address must be given");
  }
  for (const double rate : opts.rates) {
    if (!(rate > 0)) throw std::runtime_error("fanout: every --rate must be positive");
  }
  raise_fd_limit(static_cast<std::uint64_t>(opts.connections + opts.publishers) + 64);
  MosquittoLib lib;
  const int users = opts.connections;  // one device per user

  // ---- the devices: connected from this thread, then served by their own
  Receipts receipts;
  DeviceEvents device_events(receipts);
  Pool devices(server, device_events);
  std::cerr << "fanout: connecting " << opts.connections << " devices to " << describe(server) << "\n";
  const std::int64_t connect_start = mono_ns();
  std::int64_t next_line = connect_start + kSecond;
  const auto connect_line = [&] {
    return "fanout: connecting: " + tenths(seconds_since(connect_start)) + " s, started " +
           std::to_string(devices.started) + ", subscribed " + std::to_string(devices.readied.load()) + ", failed " +
           std::to_string(devices.failed.load());
  };
  const auto pump = [&](int timeout_ms) {
    devices.poll(timeout_ms);
    if (mono_ns() >= next_line) {
      next_line += kSecond;
      show_progress(connect_line(), false);
    }
  };
  for (int i = 0; i < opts.connections; ++i) {
    if (seconds_since(connect_start) >= 120) {  // connects timing out one after another
      devices.not_started(static_cast<std::uint64_t>(opts.connections - i), "not started: connecting took over 120 s");
      break;
    }
    // At most 64 handshakes under way: mosquitto listens with a backlog of
    // 100, and a SYN dropped from a full queue stalls a blocking connect 1 s.
    while (devices.started - devices.settled() >= 64 && seconds_since(connect_start) < 120) pump(5);
    const std::string id = std::to_string(i);
    Client& c = devices.add("dev-" + id, false, "u/" + id,
                            opts.local_addresses[static_cast<std::size_t>(i) % opts.local_addresses.size()]);
    devices.connect(c);
    if (i % 16 == 15 || mono_ns() >= next_line) pump(0);
  }
  while (devices.settled() < static_cast<std::uint64_t>(opts.connections) && seconds_since(connect_start) < 120) pump(20);
  const double connect_s = seconds_since(connect_start);
  show_progress(connect_line(), true);
  const std::uint64_t open_devices = devices.readied.load();
  if (devices.failed.load() > 0) std::cerr << "fanout: devices that failed to connect:\n" << devices.failures_text();
  if (open_devices == 0) throw std::runtime_error("fanout: no device could connect and subscribe to " + describe(server));
  if (devices.settled() < static_cast<std::uint64_t>(opts.connections)) {
    std::cerr << "fanout: " << opts.connections - static_cast<int>(devices.settled()) << " devices still unanswered after 120 s\n";
  }

  // ---- the publishers (created before the devices' thread starts: new_client)
  PublisherEvents pub_events;
  Pool publishers(server, pub_events);
  for (int j = 0; j < opts.publishers; ++j) {
    Client& c = publishers.add("pub-" + std::to_string(::getpid()) + "-" + std::to_string(j), true, "", "");
    // libmosquitto sends at most 20 QoS 1 messages before their PUBACKs by
    // default: raised to our own window (send_queued keeps to it).
    mosquitto_max_inflight_messages_set(c.m, static_cast<unsigned>(kPublisherWindow));
    publishers.connect(c);
  }
  const std::int64_t pub_start = mono_ns();
  while (publishers.settled() < static_cast<std::uint64_t>(opts.publishers) && seconds_since(pub_start) < 30) {
    publishers.poll(20);
    devices.poll(0);
  }
  if (publishers.readied.load() < static_cast<std::uint64_t>(opts.publishers)) {
    throw std::runtime_error("fanout: " + std::to_string(opts.publishers - static_cast<int>(publishers.readied.load())) +
                             " publishers could not connect to " + describe(server) + "\n" + publishers.failures_text());
  }

  devices.reconnect_lost = true;  // as a device would; its persistent session keeps what it missed
  std::mutex device_error_mu;
  std::string device_error;
  std::jthread device_thread([&](const std::stop_token& stop) {
    try {
      while (!stop.stop_requested()) {
        devices.poll(50);
        devices.service();
      }
    } catch (const std::exception& e) {
      std::lock_guard lock(device_error_mu);
      device_error = e.what();
    }
  });
  const auto check_devices = [&] {
    std::lock_guard lock(device_error_mu);
    if (!device_error.empty()) throw std::runtime_error("fanout: devices: " + device_error);
  };

  Fd ticker(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (ticker.get() < 0) throw std::runtime_error(std::string("timerfd_create: ") + std::strerror(errno));
  publishers.add_extra(ticker.get());
  auto& pubs = publishers.clients();
  int run_id = 0;
  for (const double rate : opts.rates) {
    ++run_id;
    std::mt19937_64 rng(static_cast<std::uint64_t>(run_id));
    std::uniform_int_distribution<int> pick(0, users - 1);
    const auto total = static_cast<std::uint64_t>(std::llround(rate * (opts.warmup_s + opts.duration_s)));
    const std::int64_t start_ns = mono_ns();
    const std::int64_t window_ns = start_ns + ns_of(opts.warmup_s);
    receipts.start_run(run_id, total, start_ns, window_ns);
    pub_events.reset(pubs.size(), total, window_ns);
    RunCpu cpu(server.pid);
    std::uint64_t issued = 0;
    std::size_t next_pub = 0;
    const auto received_now = [&] { return receipts.received(); };
    const auto run_line = [&] {
      return "fanout rate=" + format_number(rate) + "/s: " + tenths(seconds_since(start_ns)) + " s, issued " +
             std::to_string(issued) + ", accepted " + std::to_string(pub_events.accepted) + ", received " +
             std::to_string(received_now()) + ", awaiting PUBACK " + std::to_string(pub_events.in_flight()) +
             ", queued " + std::to_string(pub_events.waiting());
    };
    next_line = start_ns + kSecond;
    // Hands p's queued messages to libmosquitto while its window has room.
    const auto send_queued = [&](Client& p) {
      auto& q = pub_events.queued[p.index];
      auto& in_flight = pub_events.pending[p.index];
      while (!q.empty() && in_flight.size() < kPublisherWindow && p.ready) {
        const PublisherEvents::Queued m = q.front();
        q.pop_front();
        const std::string topic = "u/" + std::to_string(m.user);
        const std::string payload = stamped_payload(run_id, m.k, m.intended_ns, opts.data_bytes);
        int mid = 0;
        const int rc = mosquitto_publish(p.m, &mid, topic.c_str(), static_cast<int>(payload.size()), payload.data(), 1, false);
        if (rc != MOSQ_ERR_SUCCESS || !in_flight.try_emplace(mid, PublisherEvents::Pending{m.k, m.intended_ns}).second) {
          ++pub_events.failed;
          ++pub_events.answered;
        }
        publishers.after_io(p, rc);  // may end p (then its queue is given up)
      }
    };

    // Open loop: each tick issues every publish whose intended time has
    // come, stamped with that time (not the time it is actually sent).
    set_ticker(ticker.get(), 500000);
    std::int64_t ack_deadline = 0;
    for (;;) {
      const std::int64_t now = mono_ns();
      while (issued < total) {
        const std::int64_t intended = start_ns + static_cast<std::int64_t>(static_cast<double>(issued) * 1e9 / rate);
        if (intended > now) break;
        Client* p = nullptr;
        for (std::size_t tries = 0; tries < pubs.size() && p == nullptr; ++tries) {
          Client& cand = *pubs[next_pub++ % pubs.size()];
          if (cand.ready) p = &cand;
        }
        if (p == nullptr) throw std::runtime_error("fanout: every publisher lost its connection to " + describe(server));
        pub_events.queued[p->index].push_back(PublisherEvents::Queued{issued, intended, pick(rng)});
        ++issued;
        send_queued(*p);
      }
      if (now >= next_line) {
        next_line += kSecond;
        show_progress(run_line(), false);
        check_devices();
      }
      if (issued == total) {
        if (pub_events.answered >= total) break;
        if (ack_deadline == 0) {
          ack_deadline = now + ns_of(opts.drain_s) + 30 * kSecond;
          set_ticker(ticker.get(), 10000000);
        }
        if (now >= ack_deadline) {
          std::cerr << "\nfanout: " << pub_events.in_flight() + pub_events.waiting() << " publishes without PUBACK "
                    << format_number(opts.drain_s + 30) << " s after the last one: counted as failed\n";
          for (std::size_t j = 0; j < pubs.size(); ++j) pub_events.give_up(j);
          break;
        }
      }
      if (publishers.poll(100)) {
        std::uint64_t expirations = 0;
        while (::read(ticker.get(), &expirations, sizeof expirations) > 0) {
        }
      }
      publishers.service();
      for (auto& p : pubs) send_queued(*p);
    }
    set_ticker(ticker.get(), 0);

    // Stragglers: wait until every PUBACKed message reached its device, or drain_s.
    const std::int64_t drain_deadline = mono_ns() + ns_of(opts.drain_s);
    std::uint64_t missing = receipts.missing(pub_events.acked);
    while (missing > 0 && mono_ns() < drain_deadline) {
      publishers.poll(20);
      if (mono_ns() >= next_line) {
        next_line += kSecond;
        show_progress(run_line(), false);
        check_devices();
      }
      missing = receipts.missing(pub_events.acked);
    }
    cpu.finish();
    show_progress(run_line(), true);
    check_devices();
    receipts.end_run();
    const Receipts::Totals got = receipts.totals();
    const LatencyHistogram& delivered = got.latency;
    const std::uint64_t received = got.received, duplicates = got.duplicates, ignored = got.ignored;
    if (ignored > 0) std::cerr << "fanout: " << ignored << " messages of other runs (or unreadable) ignored\n";
    if (devices.reconnects.load() > 0) std::cerr << "fanout: " << devices.reconnects.load() << " device reconnections so far\n";

    BenchRow row;
    row.scenario = "fanout";
    row.params = {{"peer", "mosquitto"},
                  {"connections", std::to_string(opts.connections)},
                  {"rate", format_number(rate)},
                  {"duration_s", format_number(opts.duration_s)}};
    row.values = {{"open_connections", static_cast<double>(open_devices)},
                  {"connect_s", connect_s},
                  {"accepted", static_cast<double>(pub_events.accepted)},
                  {"refused", 0},
                  {"failed", static_cast<double>(pub_events.failed)},
                  {"expected_deliveries", static_cast<double>(pub_events.accepted)},
                  {"received", static_cast<double>(received)},
                  {"missing", static_cast<double>(missing)},
                  {"duplicates", static_cast<double>(duplicates)}};
    if (server.pid != 0) row.values.emplace_back("server_rss_mib", static_cast<double>(proc_kb(server.pid, "status", "VmRSS")) / 1024.0);
    cpu.add_values(row.values, received);
    row.latencies = {{"publish -> client", delivered}, {"publish -> 200", pub_events.latency}};
    report.add(std::move(row));
  }

  device_thread.request_stop();
  device_thread.join();
  publishers.disconnect_all();
  devices.disconnect_all();
}

// ---------------------------------------------------------------- connect

namespace {

// Writes all of `line`; false when the other end is gone.
bool write_line(int fd, const std::string& line) {
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads what is available from a non-blocking fd into buf; false at EOF or error.
bool read_some(int fd, std::string& buf) {
  char chunk[4096];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n > 0) {
      buf.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
}

// Takes the next complete line out of buf.
bool take_line(std::string& buf, std::string& line) {
  const auto nl = buf.find('\n');
  if (nl == std::string::npos) return false;
  line = buf.substr(0, nl);
  buf.erase(0, nl + 1);
  return true;
}

void set_nonblock(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// A client process of the connect scenario. Parent -> child: "go", "stop"
// (or the pipe closes); child -> parent, JSON lines every 250 ms:
// {"started","open","failed","done"} and once, when every client is ready
// or given up, "done":true with "first_start_ns", "last_ready_ns",
// "connect" (LatencyHistogram::to_json) and "failures" {"why":count}.
int connect_child(int k, int count, double rate, int in_fd, int out_fd, const PeerServer& server,
                  const std::string& id_prefix) {
  raise_fd_limit(static_cast<std::uint64_t>(count) + 64);
  MosquittoLib lib;
  ::signal(SIGPIPE, SIG_IGN);  // the parent gone: write_line fails instead
  set_nonblock(in_fd);
  std::string in;
  // ---- wait for "go" (bounded: the parent's warm-up takes seconds)
  const std::int64_t wait_until = mono_ns() + 600 * kSecond;
  for (;;) {
    std::string line;
    if (take_line(in, line)) {
      if (line == "go") break;
      return 0;  // "stop" before "go"
    }
    if (mono_ns() > wait_until) return 1;
    pollfd p{in_fd, POLLIN, 0};
    ::poll(&p, 1, 1000);
    if (!read_some(in_fd, in) && in.find('\n') == std::string::npos) return 0;
  }
  Events no_events;
  Pool pool(server, no_events);
  pool.add_extra(in_fd);
  const std::string bind = "127.0.0." + std::to_string(10 + k);
  const std::int64_t t0 = mono_ns();
  const std::int64_t settle_deadline = t0 + ns_of(count / rate) + 60 * kSecond;
  std::int64_t next_status = t0;
  bool done = false;
  int started = 0;
  for (;;) {
    std::int64_t now = mono_ns();
    if (started < count && now > settle_deadline) {  // connects timing out one after another
      pool.not_started(static_cast<std::uint64_t>(count - started), "not started: out of time");
      started = count;
    }
    while (started < count && t0 + static_cast<std::int64_t>(static_cast<double>(started) * 1e9 / rate) <= now) {
      const std::string id = id_prefix + std::to_string(k) + "-" + std::to_string(started);
      Client& c = pool.add(id, false, "u/" + id, bind);
      pool.connect(c);
      ++started;
      now = mono_ns();
    }
    if (!done && ((started == count && pool.settled() >= static_cast<std::uint64_t>(count)) || now > settle_deadline)) {
      done = true;
      boost::json::object failures;
      for (const auto& [why, n] : pool.failures) failures[why] = n;
      if (pool.settled() < static_cast<std::uint64_t>(started)) {
        failures["no CONNACK/SUBACK in time"] = static_cast<std::uint64_t>(started) - pool.settled();
      }
      const boost::json::object o{{"started", pool.started},
                                  {"open", pool.open.load()},
                                  {"failed", static_cast<std::uint64_t>(started) - pool.readied.load()},
                                  {"done", true},
                                  {"first_start_ns", pool.first_start_ns},
                                  {"last_ready_ns", pool.last_ready_ns},
                                  {"connect", pool.connect_latency.to_json()},
                                  {"failures", failures}};
      if (!write_line(out_fd, boost::json::serialize(o) + "\n")) break;
    }
    if (now >= next_status) {
      next_status = now + kSecond / 4;
      const boost::json::object o{{"started", pool.started},
                                  {"open", pool.open.load()},
                                  {"failed", pool.failed.load()},
                                  {"done", done}};
      if (!write_line(out_fd, boost::json::serialize(o) + "\n")) break;
    }
    pool.service();
    if (pool.poll(started < count ? 1 : 100)) {
      const bool alive = read_some(in_fd, in);
      std::string line;
      bool stop = !alive;
      while (take_line(in, line)) stop = stop || line == "stop";
      if (stop) break;
    }
  }
  pool.disconnect_all();
  return 0;
}

struct Child {
  pid_t pid = -1;
  int to = -1;    // parent -> child
  int from = -1;  // child -> parent
  std::string buf;
  bool eof = false;
  bool done = false;
  std::uint64_t started = 0, open = 0, failed = 0;
  std::int64_t first_start_ns = 0, last_ready_ns = 0;
  LatencyHistogram connect;
  std::map<std::string, std::uint64_t> failures;
};

// The client processes; stopped (pipes closed, then killed if need be) on destruction.
class Children {
 public:
  std::vector<Child> kids;

  ~Children() {
    for (auto& c : kids) {
      if (c.to >= 0) ::close(c.to);
      if (c.from >= 0) ::close(c.from);
    }
    const std::int64_t deadline = mono_ns() + 15 * kSecond;
    for (auto& c : kids) {
      if (c.pid <= 0) continue;
      for (;;) {
        const pid_t r = ::waitpid(c.pid, nullptr, WNOHANG);
        if (r == c.pid || (r < 0 && errno != EINTR)) break;
        if (mono_ns() > deadline) {
          ::kill(c.pid, SIGKILL);
          ::waitpid(c.pid, nullptr, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }

  void send(const std::string& line) {
    for (auto& c : kids) write_line(c.to, line + "\n");
  }

  // Reads the children's lines for up to timeout_ms.
  void pump(int timeout_ms) {
    std::vector<pollfd> fds;
    for (auto& c : kids) fds.push_back(pollfd{c.eof ? -1 : c.from, POLLIN, 0});
    ::poll(fds.data(), fds.size(), timeout_ms);
    for (std::size_t i = 0; i < kids.size(); ++i) {
      Child& c = kids[i];
      if (c.eof || fds[i].revents == 0) continue;
      if (!read_some(c.from, c.buf)) c.eof = true;
      std::string line;
      while (take_line(c.buf, line)) {
        boost::system::error_code ec;
        const auto v = boost::json::parse(line, ec);
        if (ec || !v.is_object()) continue;
        const auto& o = v.as_object();
        const auto num = [&](const char* key) -> std::int64_t {
          const auto* x = o.if_contains(key);
          return x != nullptr && x->is_number() ? x->to_number<std::int64_t>() : 0;
        };
        c.started = static_cast<std::uint64_t>(num("started"));
        c.open = static_cast<std::uint64_t>(num("open"));
        c.failed = static_cast<std::uint64_t>(num("failed"));
        if (o.contains("connect")) {
          c.done = true;
          c.first_start_ns = num("first_start_ns");
          c.last_ready_ns = num("last_ready_ns");
          c.connect = LatencyHistogram::from_json(o.at("connect"));
          if (const auto* f = o.if_contains("failures"); f != nullptr && f->is_object()) {
            for (const auto& [why, n] : f->as_object()) c.failures[std::string(why)] = n.to_number<std::uint64_t>();
          }
        }
      }
    }
  }

  // A child that ended before it should have.
  void check() const {
    for (std::size_t k = 0; k < kids.size(); ++k) {
      if (kids[k].eof) throw std::runtime_error("connect: client process " + std::to_string(k) + " exited early (see its error above)");
    }
  }

  std::uint64_t sum(std::uint64_t Child::*field) const {
    std::uint64_t n = 0;
    for (const auto& c : kids) n += c.*field;
    return n;
  }
  bool all_done() const {
    return std::all_of(kids.begin(), kids.end(), [](const Child& c) { return c.done; });
  }
};

}  // namespace

void run_mosquitto_connect(const PeerServer& server, const ConnectOptions& opts, BenchReport& report) {
  const int n = opts.connections;
  if (n <= 0 || opts.processes <= 0 || opts.processes > 240 || !(opts.rate > 0)) {
    throw std::runtime_error("connect: --connections and --rate must be positive, --processes in 1..240");
  }
  const std::string id_prefix = "conn-" + std::to_string(::getpid()) + "-";

  // ---- the client processes, forked before this process has any thread
  Children children;
  std::cout << std::flush;
  std::cerr << std::flush;
  for (int k = 0; k < opts.processes; ++k) {
    int to[2], from[2];
    if (::pipe2(to, O_CLOEXEC) != 0 || ::pipe2(from, O_CLOEXEC) != 0) {
      throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    }
    const int count = n / opts.processes + (k < n % opts.processes ? 1 : 0);
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      for (auto& c : children.kids) {  // the other children's pipes: their EOF is theirs alone
        ::close(c.to);
        ::close(c.from);
      }
      ::close(to[1]);
      ::close(from[0]);
      int rc = 1;
      try {
        rc = connect_child(k, count, opts.rate / opts.processes, to[0], from[1], server, id_prefix);
      } catch (const std::exception& e) {
        std::cerr << "herald-compare: connect: client process " << k << ": " << e.what() << "\n";
      }
      ::_exit(rc);
    }
    ::close(to[0]);
    ::close(from[1]);
    set_nonblock(from[0]);
    Child c;
    c.pid = pid;
    c.to = to[1];
    c.from = from[0];
    children.kids.push_back(std::move(c));
  }

  MosquittoLib lib;
  ::signal(SIGPIPE, SIG_IGN);  // a child gone: its pipe's write fails (EPIPE) instead of killing us
  const pid_t spid = server.pid;
  if (spid == 0) std::cerr << "connect: no --pid: server memory is not measured\n";

  // ---- warm-up: clients like the measured ones opened and closed, so that
  // the baseline includes what the first connections set up once
  if (opts.warmup_connections > 0) {
    const std::uint64_t fds_before = proc_open_fds(spid);
    Events no_events;
    Pool warm(server, no_events);
    const std::int64_t t0 = mono_ns();
    const std::int64_t deadline = t0 + ns_of(opts.warmup_connections / opts.rate) + 60 * kSecond;
    int started = 0;
    while (mono_ns() < deadline && warm.settled() < static_cast<std::uint64_t>(opts.warmup_connections)) {
      while (started < opts.warmup_connections && mono_ns() < deadline &&
             t0 + static_cast<std::int64_t>(static_cast<double>(started) * 1e9 / opts.rate) <= mono_ns()) {
        Client& c = warm.add("warm-" + std::to_string(::getpid()) + "-" + std::to_string(started), false,
                             "u/warm-" + std::to_string(started), "127.0.0.9");
        warm.connect(c);
        ++started;
      }
      warm.poll(1);
    }
    show_progress("connect warm-up: " + std::to_string(warm.readied.load()) + " ready, " +
                      std::to_string(warm.failed.load()) + " failed",
                  true);
    if (warm.readied.load() == 0) {
      throw std::runtime_error("connect: warm-up: no client could connect and subscribe to " + describe(server) + "\n" +
                               warm.failures_text());
    }
    warm.disconnect_all();
    const std::int64_t closed_by = mono_ns() + 10 * kSecond;
    while (spid != 0 && proc_open_fds(spid) > fds_before && mono_ns() < closed_by) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const MemorySample baseline = sample_memory(spid);

  // ---- the connections
  std::cerr << "connect: " << n << " connections at " << format_number(opts.rate) << "/s from " << opts.processes
            << " client processes to " << describe(server) << "\n";
  const std::int64_t t0 = mono_ns();
  children.send("go");
  const std::int64_t deadline = t0 + ns_of(n / opts.rate) + 90 * kSecond;
  std::int64_t next_line = t0 + kSecond;
  const auto line = [&] {
    return "connect: " + tenths(seconds_since(t0)) + " s, started " + std::to_string(children.sum(&Child::started)) +
           ", open " + std::to_string(children.sum(&Child::open)) + ", failed " +
           std::to_string(children.sum(&Child::failed));
  };
  while (!children.all_done()) {
    children.pump(100);
    children.check();
    if (mono_ns() >= next_line) {
      next_line += kSecond;
      show_progress(line(), false);
    }
    if (mono_ns() > deadline) throw std::runtime_error("connect: the client processes did not finish connecting in time");
  }
  show_progress(line(), true);
  std::map<std::string, std::uint64_t> failures;
  LatencyHistogram connect;
  std::int64_t first_start = 0, last_ready = 0;
  for (const auto& c : children.kids) {
    for (const auto& [why, count] : c.failures) failures[why] += count;
    connect.merge(c.connect);
    if (c.first_start_ns != 0 && (first_start == 0 || c.first_start_ns < first_start)) first_start = c.first_start_ns;
    last_ready = std::max(last_ready, c.last_ready_ns);
  }
  if (!failures.empty()) {
    std::cerr << "connect: connection attempts that failed:\n";
    for (const auto& [why, count] : failures) std::cerr << "  " << count << " x " << why << "\n";
  }
  if (connect.count() == 0) throw std::runtime_error("connect: no client could connect and subscribe to " + describe(server));

  // ---- idle, then measure
  const std::int64_t hold_until = mono_ns() + ns_of(opts.hold_s);
  while (mono_ns() < hold_until) {
    children.pump(static_cast<int>(std::clamp<std::int64_t>((hold_until - mono_ns()) / 1000000, 1, 250)));
    children.check();
  }
  children.pump(300);  // a fresh status from each
  children.check();
  const double open = static_cast<double>(children.sum(&Child::open));
  const MemorySample held = sample_memory(spid);
  children.send("stop");

  std::uint64_t failed_attempts = 0;
  for (const auto& [why, count] : failures) failed_attempts += count;
  const double connect_s = last_ready > first_start ? static_cast<double>(last_ready - first_start) / 1e9 : 0;
  BenchRow row;
  row.scenario = "connect";
  row.params = {{"peer", "mosquitto"},
                {"connections", std::to_string(n)},
                {"rate", format_number(opts.rate)},
                {"processes", std::to_string(opts.processes)},
                {"hold_s", format_number(opts.hold_s)}};
  row.values = {{"open_connections", open},
                {"connect_s", connect_s},
                {"connect_rate_per_s", connect_s > 0 ? static_cast<double>(connect.count()) / connect_s : 0},
                {"failed_attempts", static_cast<double>(failed_attempts)}};
  add_memory_values(row.values, baseline, held, open, spid != 0);
  row.latencies = {{"connect -> welcome", connect}};
  report.add(std::move(row));
}

}  // namespace herald::bench::compare
