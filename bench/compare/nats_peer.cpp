// The NATS JetStream peer of bench/compare: Herald's fanout and connect
// scenarios on nats-server with JetStream, through libnats (the official C
// client).
//
// A device is a NATS connection plus its own durable push consumer ("dev-<i>",
// filter subject "u.<i>", explicit acks) on one stream ("HERALD", subjects
// "u.>", file storage, limits retention, 72 h max age: Herald's inbox TTL);
// every message is acknowledged with natsMsg_Ack (a real +ACK to the server).
// Publishers use JetStream async publish and count a message as accepted when
// its PubAck comes back.
//
// No thread per connection: every connection is driven by a libevent loop
// (the libnats libevent adapter), in "send asap" mode (with an event loop that
// hands writes to the loop instead of starting a flusher thread per
// connection), and messages are handed to the application by libnats' global
// delivery pool. The only extra threads are a few that run the blocking
// connect + consumer creation calls in parallel during setup.
//
// libnats 3.4 cannot bind a connection to a source address, so
// FanoutOptions::local_addresses is not used: every connection comes from
// 127.0.0.1 (one source address gives ~28k ephemeral ports, enough here).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <nats/nats.h>
// Defines the adapter's functions (not inline): included in this file only.
#include <nats/adapters/libevent.h>

#include "latency_histogram.hpp"
#include "nats_clients.hpp"
#include "peers.hpp"
#include "proc_stats.hpp"
#include "progress.hpp"
#include "receipts.hpp"

namespace herald::bench::compare {

namespace {

using namespace jetstream;  // the clients (nats_clients.hpp)

// ---------------------------------------------------------------- fanout

// What the devices saw, on the delivery pool's threads: the receipts, and
// acks the client library could not send.
struct DeviceSink {
  Receipts receipts;
  std::atomic<std::uint64_t> ack_errors{0};
};

void on_device_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  const std::int64_t now = mono_ns();
  auto& sink = *static_cast<DeviceSink*>(closure);
  const int len = natsMsg_GetDataLength(msg);
  const char* data = natsMsg_GetData(msg);
  sink.receipts.record(std::string_view(data != nullptr ? data : "", data != nullptr ? static_cast<std::size_t>(std::max(0, len)) : 0), now);
  if (natsMsg_Ack(msg, nullptr) != NATS_OK) sink.ack_errors.fetch_add(1, std::memory_order_relaxed);
  natsMsg_Destroy(msg);
}

// The publishers' PubAcks, on the delivery pool's threads.
struct PubStats {
  std::mutex mu;
  std::int64_t run = 0;
  std::int64_t window_start_ns = 0;
  std::uint64_t accepted = 0;
  std::uint64_t failed = 0;
  std::uint64_t answered = 0;
  std::string first_error;
  LatencyHistogram latency;  // intended publish time -> PubAck
};

void on_pub_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  const std::int64_t now = mono_ns();
  auto& ps = *static_cast<PubStats*>(closure);
  const int len = natsMsg_GetDataLength(msg);
  const char* data = natsMsg_GetData(msg);
  const auto st = read_stamp(std::string_view(data != nullptr ? data : "", data != nullptr ? static_cast<std::size_t>(std::max(0, len)) : 0));
  natsMsg_Destroy(msg);
  std::lock_guard lock(ps.mu);
  if (st && st->run != ps.run) return;  // a late answer of an earlier run
  ++ps.answered;
  if (pa != nullptr) {
    ++ps.accepted;
    if (st && st->intended_ns >= ps.window_start_ns) ps.latency.record(std::chrono::nanoseconds(now - st->intended_ns));
  } else {
    ++ps.failed;
    if (ps.first_error.empty()) {
      ps.first_error = pae == nullptr ? "no PubAck"
                       : pae->ErrText != nullptr && *pae->ErrText != 0
                           ? std::string(pae->ErrText)
                           : std::string(natsStatus_GetText(pae->Err));
    }
  }
}

}  // namespace

void run_nats_fanout(const PeerServer& server, const FanoutOptions& opts, BenchReport& report) {
  const int n = std::max(1, opts.connections);
  const int publishers = std::max(1, opts.publishers);
  if (!opts.local_addresses.empty()) {
    std::cerr << "fanout: libnats 3.4 cannot bind a source address: every connection comes from the default one\n";
  }
  NatsLibrary lib(2);
  PubStats pubstats;
  DeviceSink devices_sink;
  Receipts& receipts = devices_sink.receipts;
  // Declared before the connections: destroyed after them (a connection
  // must be closed while its loop runs).
  EventLoop device_loop;
  EventLoop publisher_loop;
  std::vector<std::unique_ptr<Conn>> devices(static_cast<std::size_t>(n));
  std::vector<std::unique_ptr<Conn>> pubs;
  struct Closing {
    std::vector<std::unique_ptr<Conn>>& a;
    std::vector<std::unique_ptr<Conn>>& b;
    ~Closing() {
      a.clear();
      b.clear();
    }
  } closing{devices, pubs};

  Admin admin(server);
  admin.recreate_stream();

  // ---- the devices: a connection and a durable consumer each
  std::cerr << "fanout: connecting " << n << " devices (a durable consumer each) to " << server_url(server) << "\n";
  auto device_options = connection_options(server, &device_loop);
  const std::int64_t connect_start = mono_ns();
  OpenJob job;
  job.conns = &devices;
  job.options = device_options.get();
  job.durable = [](int i) { return "dev-" + std::to_string(i); };
  job.subject = [](int i) { return "u." + std::to_string(i); };
  job.cb = on_device_message;
  job.closure = &devices_sink;
  job.threads = 8;
  job.deadline_ns = connect_start + static_cast<std::int64_t>((120.0 + n * 0.02) * 1e9);
  job.progress = [&](const std::atomic<int>& opened, const std::atomic<int>& failed) {
    show_progress("fanout: " + format_number(secs_since(connect_start)) + " s, open " + std::to_string(opened.load()) +
                      ", failed " + std::to_string(failed.load()),
                  false);
  };
  const OpenResult opened = open_devices(job);
  const double connect_s = (mono_ns() - connect_start) / 1e9;
  show_progress("fanout: " + std::to_string(opened.opened) + " open after " + format_number(connect_s) + " s, " +
                    std::to_string(opened.failed) + " failed, " + std::to_string(opened.not_started) +
                    " not started (deadline)",
                true);
  if (!opened.first_error.empty()) std::cerr << "fanout: first device error: " << opened.first_error << "\n";
  if (opened.opened == 0) throw std::runtime_error("fanout: no device could connect to " + server_url(server));

  // ---- the publishers: JetStream async publish, a PubAck awaited for each message
  auto pub_options = connection_options(server, &publisher_loop);
  for (int p = 0; p < publishers; ++p) {
    auto c = std::make_unique<Conn>();
    check(natsConnection_Connect(&c->nc, pub_options.get()), "publisher connect");
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = kApiWaitMs;
    jo.PublishAsync.MaxPending = 1 << 22;  // never stalls the open loop
    jo.PublishAsync.AckHandler = on_pub_ack;
    jo.PublishAsync.AckHandlerClosure = &pubstats;
    check(natsConnection_JetStream(&c->js, c->nc, &jo), "publisher JetStream context");
    pubs.push_back(std::move(c));
  }
  std::cerr << "fanout: " << thread_count() << " threads in this process\n";

  int run_id = 0;
  for (const double rate : opts.rates) {
    if (rate <= 0) throw std::runtime_error("fanout: rate must be positive");
    ++run_id;
    std::mt19937_64 rng(static_cast<std::uint64_t>(run_id));
    std::uniform_int_distribution<int> pick(0, n - 1);
    const auto total = static_cast<std::uint64_t>(std::llround(rate * (opts.warmup_s + opts.duration_s)));
    const std::int64_t start_ns = mono_ns();
    const std::int64_t window_ns = start_ns + static_cast<std::int64_t>(opts.warmup_s * 1e9);
    receipts.start_run(run_id, total, start_ns, window_ns);
    RunCpu cpu(server.pid);
    {
      std::lock_guard lock(pubstats.mu);
      pubstats.run = run_id;
      pubstats.window_start_ns = window_ns;
      pubstats.accepted = pubstats.failed = pubstats.answered = 0;
      pubstats.first_error.clear();
      pubstats.latency = LatencyHistogram();
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = kPubAckWaitMs;  // libnats answers a publish with an error when its PubAck has not come by then

    std::uint64_t issued = 0, send_failed = 0;
    std::string first_send_error;
    const auto line = [&] {
      std::uint64_t acc;
      const std::uint64_t got = receipts.received();
      {
        std::lock_guard lock(pubstats.mu);
        acc = pubstats.accepted;
      }
      return "fanout rate=" + format_number(rate) + "/s: " + format_number(secs_since(start_ns)) + " s, issued " +
             std::to_string(issued) + ", accepted " + std::to_string(acc) + ", received " + std::to_string(got);
    };
    // Open loop: each tick issues every publish whose intended time has
    // come, stamped with that time (not the time it is actually sent).
    auto next_report = clock::now() + std::chrono::seconds(1);
    while (issued < total) {
      const std::int64_t now = mono_ns();
      while (issued < total) {
        const std::int64_t intended = start_ns + static_cast<std::int64_t>(static_cast<double>(issued) * 1e9 / rate);
        if (intended > now) break;
        const std::uint64_t k = issued++;
        const std::string subject = "u." + std::to_string(pick(rng));
        const std::string body = stamped_payload(run_id, k, intended, opts.data_bytes);
        const natsStatus s = js_PublishAsync(pubs[k % pubs.size()]->js, subject.c_str(), body.data(),
                                             static_cast<int>(body.size()), &po);
        if (s != NATS_OK) {
          ++send_failed;
          if (first_send_error.empty()) first_send_error = nats_error(s);
        }
      }
      if (clock::now() >= next_report) {
        next_report += std::chrono::seconds(1);
        show_progress(line(), false);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }

    // Every publish answered (PubAck, error or libnats' timeout), bounded.
    const auto answer_deadline = clock::now() + std::chrono::milliseconds(kPubAckWaitMs + 10000);
    for (;;) {
      std::uint64_t answered;
      {
        std::lock_guard lock(pubstats.mu);
        answered = pubstats.answered;
      }
      if (answered + send_failed >= issued || clock::now() >= answer_deadline) break;
      if (clock::now() >= next_report) {
        next_report += std::chrono::seconds(1);
        show_progress(line(), false);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::uint64_t unanswered = 0;
    for (auto& p : pubs) {
      natsMsgList pending;
      if (js_PublishAsyncGetPendingList(&pending, p->js) == NATS_OK) {
        unanswered += static_cast<std::uint64_t>(pending.Count);
        natsMsgList_Destroy(&pending);
      }
    }
    if (unanswered > 0) std::cerr << "\nfanout: " << unanswered << " publishes never answered\n";

    // Stragglers: wait until every accepted message reached its device, or drain_s.
    std::uint64_t accepted;
    {
      std::lock_guard lock(pubstats.mu);
      accepted = pubstats.accepted;
    }
    const auto drain_deadline =
        clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(opts.drain_s));
    for (;;) {
      if (receipts.received() >= accepted) break;
      if (clock::now() >= drain_deadline) break;
      if (clock::now() >= next_report) {
        next_report += std::chrono::seconds(1);
        show_progress(line(), false);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    cpu.finish();
    show_progress(line(), true);

    receipts.end_run();  // late arrivals of this run are no longer counted
    const Receipts::Totals got = receipts.totals();
    const LatencyHistogram& delivered = got.latency;
    const std::uint64_t received = got.received, duplicates = got.duplicates;
    LatencyHistogram published;
    std::uint64_t failed;
    if (got.ignored > 0 || devices_sink.ack_errors.load() > 0) {
      std::cerr << "fanout: " << got.ignored << " messages of other runs (or unreadable) ignored, "
                << devices_sink.ack_errors.load() << " failed acks\n";
    }
    {
      std::lock_guard lock(pubstats.mu);
      published = pubstats.latency;
      accepted = pubstats.accepted;
      failed = pubstats.failed + send_failed + unanswered;
      if (!pubstats.first_error.empty()) std::cerr << "fanout: first PubAck error: " << pubstats.first_error << "\n";
      pubstats.run = 0;
    }
    if (!first_send_error.empty()) std::cerr << "fanout: first publish error: " << first_send_error << "\n";
    report_async_errors("fanout");
    const int still_open = connected(devices);
    if (still_open < opened.opened) std::cerr << "fanout: " << opened.opened - still_open << " devices lost\n";

    BenchRow row;
    row.scenario = "fanout";
    row.params = {{"peer", "nats"},
                  {"connections", std::to_string(n)},
                  {"rate", format_number(rate)},
                  {"duration_s", format_number(opts.duration_s)}};
    row.values = {{"open_connections", static_cast<double>(still_open)},
                  {"connect_s", connect_s},
                  {"accepted", static_cast<double>(accepted)},
                  {"refused", 0.0},
                  {"failed", static_cast<double>(failed)},
                  {"expected_deliveries", static_cast<double>(accepted)},
                  {"received", static_cast<double>(received)},
                  {"missing", static_cast<double>(accepted > received ? accepted - received : 0)},
                  {"duplicates", static_cast<double>(duplicates)}};
    if (server.pid != 0) {
      row.values.emplace_back("server_rss_mib", static_cast<double>(proc_kb(server.pid, "status", "VmRSS")) / 1024.0);
    }
    cpu.add_values(row.values, received);
    row.latencies = {{"publish -> client", delivered}, {"publish -> 200", published}};
    report.add(std::move(row));
  }
  std::cerr << "fanout: closing " << opened.opened << " devices\n";
}

// ---------------------------------------------------------------- connect

namespace {

void write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const ssize_t w = ::write(fd, s.data() + off, s.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;  // the other side is gone; it notices on its own
    off += static_cast<std::size_t>(w);
  }
}

void write_line(int fd, const boost::json::object& o) { write_all(fd, boost::json::serialize(o) + "\n"); }

// Waits up to `timeout_ms` for a command byte: the byte, 0 on end of file or error, -1 on timeout.
int read_command(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  const int r = ::poll(&p, 1, timeout_ms);
  if (r == 0) return -1;
  if (r < 0) return errno == EINTR ? -1 : 0;
  char c = 0;
  const ssize_t n = ::read(fd, &c, 1);
  return n == 1 ? static_cast<unsigned char>(c) : 0;
}

struct ChildPlan {
  int index = 0;
  int first = 0;  // global number of its first device
  int count = 0;
  double rate = 0;
  bool bare = false;
  int cmd_fd = -1;     // from the parent: 'g' go, 's' stop
  int status_fd = -1;  // to the parent: JSON lines
};

// A child process: opens its devices when told, reports, holds them until told to stop.
int child_main(const PeerServer& server, const ChildPlan& plan) {
  try {
    // Waits for the parent's warm-up and baseline.
    int c = -1;
    for (int waited = 0; c == -1 && waited < 600; ++waited) c = read_command(plan.cmd_fd, 1000);
    if (c != 'g') return 0;

    NatsLibrary lib(1);
    EventLoop loop;
    DeviceSink ignored;  // idle devices: the stream stays empty
    std::vector<std::unique_ptr<Conn>> devices(static_cast<std::size_t>(plan.count));
    struct Closing {
      std::vector<std::unique_ptr<Conn>>& d;
      ~Closing() { d.clear(); }
    } closing{devices};
    auto options = connection_options(server, &loop);
    OpenJob job;
    job.conns = &devices;
    job.options = options.get();
    const int first = plan.first;
    if (plan.bare) {
      job.durable = [](int) { return std::string(); };
    } else {
      job.durable = [first](int j) { return "idle-" + std::to_string(first + j); };
    }
    job.subject = [first](int j) { return "u." + std::to_string(first + j); };
    job.cb = on_device_message;
    job.closure = &ignored;
    job.rate = plan.rate;
    job.threads = 8;  // blocking calls: enough of them to keep up with the rate
    job.deadline_ns = mono_ns() + static_cast<std::int64_t>((plan.count / std::max(plan.rate, 1.0) + 120.0) * 1e9);
    job.progress = [&](const std::atomic<int>& opened, const std::atomic<int>& failed) {
      write_line(plan.status_fd, {{"open", opened.load()}, {"failed", failed.load()}});
    };
    const OpenResult r = open_devices(job);
    write_line(plan.status_fd, {{"done", true},
                                {"open", r.opened},
                                {"failed", r.failed},
                                {"not_started", r.not_started},
                                {"first_error", r.first_error},
                                {"first_start_ns", r.first_start_ns},
                                {"last_connect_ns", r.last_connect_ns},
                                {"threads", thread_count()},
                                {"latency", r.latency.to_json()}});
    // Holds them until the parent says stop or goes away, reporting losses.
    for (int waited = 0; waited < 3600; ++waited) {
      c = read_command(plan.cmd_fd, 1000);
      if (c != -1) break;
      write_line(plan.status_fd, {{"open", connected(devices)}});
    }
    return 0;
  } catch (const std::exception& e) {
    write_line(plan.status_fd, {{"error", e.what()}});
    return 1;
  }
}

struct Child {
  pid_t pid = -1;
  int cmd_fd = -1;
  int status_fd = -1;
  std::string buffer;
  bool done = false;
  bool gone = false;
  std::int64_t open = 0, failed = 0, not_started = 0;
  std::string first_error;
  std::string error;
  std::int64_t first_start_ns = 0, last_connect_ns = 0;
  int threads = 0;
  LatencyHistogram latency;
};

// Reads what the children have written, up to `timeout_ms`.
void poll_children(std::vector<Child>& children, int timeout_ms) {
  std::vector<pollfd> fds;
  std::vector<Child*> who;
  for (auto& c : children) {
    if (c.gone) continue;
    fds.push_back({c.status_fd, POLLIN, 0});
    who.push_back(&c);
  }
  if (fds.empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
    return;
  }
  if (::poll(fds.data(), fds.size(), timeout_ms) <= 0) return;
  for (std::size_t k = 0; k < fds.size(); ++k) {
    if ((fds[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    Child& c = *who[k];
    char buf[65536];
    const ssize_t n = ::read(c.status_fd, buf, sizeof buf);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      c.gone = true;
      continue;
    }
    c.buffer.append(buf, static_cast<std::size_t>(n));
    std::size_t nl;
    while ((nl = c.buffer.find('\n')) != std::string::npos) {
      boost::system::error_code ec;
      const auto v = boost::json::parse(c.buffer.substr(0, nl), ec);
      c.buffer.erase(0, nl + 1);
      if (ec || !v.is_object()) continue;
      const auto& o = v.as_object();
      const auto num = [&](const char* key, std::int64_t dflt) {
        const auto* x = o.if_contains(key);
        return x != nullptr && x->is_number() ? x->to_number<std::int64_t>() : dflt;
      };
      if (const auto* e = o.if_contains("error"); e != nullptr && e->is_string()) c.error = std::string(e->as_string());
      c.open = num("open", c.open);
      c.failed = num("failed", c.failed);
      if (const auto* l = o.if_contains("latency"); l != nullptr) {
        c.done = true;
        c.not_started = num("not_started", 0);
        c.first_start_ns = num("first_start_ns", 0);
        c.last_connect_ns = num("last_connect_ns", 0);
        c.threads = static_cast<int>(num("threads", 0));
        c.latency = LatencyHistogram::from_json(*l);
        if (const auto* e = o.if_contains("first_error"); e != nullptr && e->is_string()) {
          c.first_error = std::string(e->as_string());
        }
      }
    }
  }
}

// Tells the children to stop and reaps them, bounded: killed after 60 s.
void stop_children(std::vector<Child>& children) {
  for (auto& c : children) {
    if (c.cmd_fd >= 0) {
      write_all(c.cmd_fd, "s");
      ::close(c.cmd_fd);
      c.cmd_fd = -1;
    }
  }
  const auto deadline = clock::now() + std::chrono::seconds(60);
  for (auto& c : children) {
    if (c.pid <= 0) continue;
    int st = 0;
    while (::waitpid(c.pid, &st, WNOHANG) == 0) {
      if (clock::now() >= deadline) {
        std::cerr << "connect: child " << c.pid << " did not stop: killed\n";
        ::kill(c.pid, SIGKILL);
        ::waitpid(c.pid, &st, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    c.pid = -1;
    if (c.status_fd >= 0) ::close(c.status_fd);
    c.status_fd = -1;
  }
}

}  // namespace

void run_nats_connect(const PeerServer& server, const ConnectOptions& opts, BenchReport& report) {
  const int n = std::max(1, opts.connections);
  const int processes = std::max(1, std::min(opts.processes, n));
  const double rate = opts.rate > 0 ? opts.rate : 1e9;
  // Devices with a durable consumer each (Herald's device with an inbox), or
  // HERALD_COMPARE_NATS_DEVICES=bare: bare connections.
  const char* mode_env = std::getenv("HERALD_COMPARE_NATS_DEVICES");
  const bool bare = mode_env != nullptr && std::string(mode_env) == "bare";
  ::signal(SIGPIPE, SIG_IGN);

  // ---- the children first, before any thread or nats_ call of this process
  std::vector<Child> children(static_cast<std::size_t>(processes));
  struct Reaper {
    std::vector<Child>& c;
    ~Reaper() { stop_children(c); }
  } reaper{children};
  int first = 0;
  for (int k = 0; k < processes; ++k) {
    ChildPlan plan;
    plan.index = k;
    plan.first = first;
    plan.count = n / processes + (k < n % processes ? 1 : 0);
    plan.rate = rate / processes;
    plan.bare = bare;
    first += plan.count;
    int cmd[2], status[2];
    if (::pipe2(cmd, O_CLOEXEC) != 0 || ::pipe2(status, O_CLOEXEC) != 0) {
      throw std::runtime_error(std::string("connect: pipe: ") + std::strerror(errno));
    }
    std::cout.flush();
    std::cerr.flush();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("connect: fork: ") + std::strerror(errno));
    if (pid == 0) {
      ::close(cmd[1]);
      ::close(status[0]);
      for (auto& c : children) {
        if (c.cmd_fd >= 0) ::close(c.cmd_fd);
        if (c.status_fd >= 0) ::close(c.status_fd);
      }
      plan.cmd_fd = cmd[0];
      plan.status_fd = status[1];
      ::_exit(child_main(server, plan));
    }
    ::close(cmd[0]);
    ::close(status[1]);
    children[static_cast<std::size_t>(k)].pid = pid;
    children[static_cast<std::size_t>(k)].cmd_fd = cmd[1];
    children[static_cast<std::size_t>(k)].status_fd = status[0];
  }

  NatsLibrary lib(1);
  Admin admin(server);
  admin.recreate_stream();
  const pid_t pid = server.pid;
  if (pid == 0) std::cerr << "connect: no --pid: server memory is not measured\n";

  // ---- warm-up: devices opened and closed, so that the baseline includes
  // what the first connections set up once (their consumers stay, durable)
  if (opts.warmup_connections > 0) {
    EventLoop loop;
    DeviceSink ignored;
    std::vector<std::unique_ptr<Conn>> warm(static_cast<std::size_t>(opts.warmup_connections));
    auto options = connection_options(server, &loop);
    OpenJob job;
    job.conns = &warm;
    job.options = options.get();
    job.durable = [bare](int j) { return bare ? std::string() : "warm-" + std::to_string(j); };
    job.subject = [](int j) { return "u.w" + std::to_string(j); };
    job.cb = on_device_message;
    job.closure = &ignored;
    job.threads = 4;
    job.deadline_ns = mono_ns() + 60'000'000'000LL;
    const OpenResult r = open_devices(job);
    show_progress("connect warm-up: " + std::to_string(r.opened) + " open, " + std::to_string(r.failed) + " failed",
                  true);
    if (r.opened == 0) throw std::runtime_error("connect: warm-up: no connection: " + r.first_error);
    warm.clear();
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const MemorySample baseline = sample_memory(pid);

  // ---- the connections
  std::cerr << "connect: " << n << (bare ? " bare connections" : " devices (a durable consumer each)") << " at "
            << format_number(opts.rate) << "/s from " << processes << " processes to " << server_url(server) << "\n";
  const std::int64_t t0 = mono_ns();
  for (auto& c : children) write_all(c.cmd_fd, "g");
  const std::int64_t deadline = t0 + static_cast<std::int64_t>((n / rate + 180.0) * 1e9);
  auto next_report = clock::now() + std::chrono::seconds(1);
  const auto totals = [&](std::int64_t Child::*field) {
    std::int64_t s = 0;
    for (const auto& c : children) s += c.*field;
    return s;
  };
  for (;;) {
    poll_children(children, 100);
    bool all_done = true;
    for (const auto& c : children) {
      if (!c.error.empty()) throw std::runtime_error("connect: child " + std::to_string(c.pid) + ": " + c.error);
      if (c.gone && !c.done) throw std::runtime_error("connect: child " + std::to_string(c.pid) + " exited early");
      all_done = all_done && c.done;
    }
    if (all_done) break;
    if (mono_ns() >= deadline) throw std::runtime_error("connect: children did not finish opening in time");
    if (clock::now() >= next_report) {
      next_report += std::chrono::seconds(1);
      show_progress("connect: " + format_number(secs_since(t0)) + " s, open " + std::to_string(totals(&Child::open)) +
                        ", failed " + std::to_string(totals(&Child::failed)),
                    false);
    }
  }
  show_progress("connect: " + format_number(secs_since(t0)) + " s, open " + std::to_string(totals(&Child::open)) +
                    ", failed " + std::to_string(totals(&Child::failed)) + ", not started " +
                    std::to_string(totals(&Child::not_started)),
                true);
  for (const auto& c : children) {
    if (!c.first_error.empty()) {
      std::cerr << "connect: child " << c.pid << " first error: " << c.first_error << "\n";
      break;
    }
  }
  std::cerr << "connect: " << children.front().threads << " threads in the first child process\n";

  // ---- idle, then measure
  const auto hold_end = clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(opts.hold_s));
  while (clock::now() < hold_end) poll_children(children, 100);
  const MemorySample held = sample_memory(pid);
  poll_children(children, 0);
  const std::int64_t open = totals(&Child::open);  // after the hold: losses reported by the children
  LatencyHistogram latency;
  std::int64_t first_start = INT64_MAX, last_connect = 0;
  for (const auto& c : children) {
    latency.merge(c.latency);
    if (c.first_start_ns > 0) first_start = std::min(first_start, c.first_start_ns);
    last_connect = std::max(last_connect, c.last_connect_ns);
  }
  const std::int64_t failed = totals(&Child::failed);
  std::cerr << "connect: closing\n";
  stop_children(children);

  const double connect_s = last_connect > first_start ? (last_connect - first_start) / 1e9 : 0;
  BenchRow row;
  row.scenario = "connect";
  row.params = {{"peer", "nats"},
                {"connections", std::to_string(n)},
                {"rate", format_number(opts.rate)},
                {"processes", std::to_string(processes)},
                {"hold_s", format_number(opts.hold_s)}};
  if (bare) row.params.emplace_back("nats_device", "bare connection");
  row.values = {{"open_connections", static_cast<double>(open)},
                {"connect_s", connect_s},
                {"connect_rate_per_s", connect_s > 0 ? static_cast<double>(latency.count()) / connect_s : 0},
                {"failed_attempts", static_cast<double>(failed)}};
  add_memory_values(row.values, baseline, held, static_cast<double>(open), pid != 0);
  // Connect start -> connected, plus the durable consumer created (unless bare).
  row.latencies = {{"connect -> welcome", latency}};
  report.add(std::move(row));
  report_async_errors("connect");
}

}  // namespace herald::bench::compare
