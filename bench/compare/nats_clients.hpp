#pragma once
// The client side of the NATS JetStream peer (bench/compare): the library
// and its libevent loop, connection options, a device (a connection and
// its durable consumer) and how many are opened at once, the stream
// administration, and the payload stamp. Used by nats_peer.cpp's fanout
// and connect scenarios.

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
#include "peers.hpp"
#include "progress.hpp"

namespace herald::bench::compare::jetstream {


using clock = std::chrono::steady_clock;

inline constexpr const char* kStream = "HERALD";
inline constexpr std::int64_t kMaxAgeNs = 72LL * 3600 * 1000000000LL;  // Herald's inbox TTL
inline constexpr std::int64_t kApiWaitMs = 10000;                      // JetStream API requests (consumer creation)
inline constexpr std::int64_t kAdminWaitMs = 120000;                   // stream deletion with thousands of consumers
inline constexpr std::int64_t kPubAckWaitMs = 30000;                   // a publish without PubAck by then failed
inline constexpr int kConnectTimeoutMs = 10000;
inline constexpr int kIoBufSize = 16 * 1024;  // per connection, twice (read and write); the default 32 KiB is for throughput

// The status's text, and libnats' last error of this thread when it says more ("(file.c:N): text").
inline std::string nats_error(natsStatus s) {
  std::string m = natsStatus_GetText(s);
  const char* last_c = nats_GetLastError(nullptr);
  std::string last = last_c != nullptr ? last_c : "";
  if (const auto p = last.find("): "); !last.empty() && last.front() == '(' && p != std::string::npos) {
    last.erase(0, p + 3);
  }
  if (!last.empty() && last != m) m += ": " + last;
  return m;
}

inline void check(natsStatus s, const std::string& what) {
  if (s != NATS_OK) throw std::runtime_error("nats: " + what + ": " + nats_error(s));
}

inline std::string server_url(const PeerServer& server) {
  return "nats://" + server.host + ":" + std::to_string(server.port);
}

inline int thread_count() {
  std::error_code ec;
  int n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/task", ec), end; !ec && it != end; it.increment(ec)) ++n;
  return n;
}

inline double secs_since(std::int64_t start_ns) { return std::round((mono_ns() - start_ns) / 1e8) / 10; }

// Errors libnats reports asynchronously (slow consumer, ...): counted, the first kept.
inline std::atomic<std::uint64_t> g_async_errors{0};
inline std::mutex g_async_error_mu;
inline std::string g_first_async_error;

inline void on_async_error(natsConnection*, natsSubscription*, natsStatus err, void*) {
  if (g_async_errors.fetch_add(1) == 0) {
    std::lock_guard lock(g_async_error_mu);
    g_first_async_error = natsStatus_GetText(err);
  }
}

inline void report_async_errors(const char* scenario) {
  const auto n = g_async_errors.exchange(0);
  if (n == 0) return;
  std::lock_guard lock(g_async_error_mu);
  std::cerr << scenario << ": libnats reported " << n << " asynchronous errors, the first: " << g_first_async_error
            << "\n";
}

// The library, its libevent threading and the size of the global delivery pool.
class NatsLibrary {
 public:
  explicit NatsLibrary(int delivery_threads) {
    natsLibevent_Init();  // evthread_use_pthreads: connections are written from other threads than the loop's
    check(nats_Open(-1), "nats_Open");
    check(nats_SetMessageDeliveryPoolSize(delivery_threads), "nats_SetMessageDeliveryPoolSize");
  }
  ~NatsLibrary() { nats_CloseAndWait(5000); }
  NatsLibrary(const NatsLibrary&) = delete;
  NatsLibrary& operator=(const NatsLibrary&) = delete;
};

// A libevent loop on a thread of its own, that drives many connections.
class EventLoop {
 public:
  EventLoop() : base_(event_base_new()) {
    if (base_ == nullptr) throw std::runtime_error("event_base_new failed");
    thread_ = std::thread([this] {
      event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
      done_.store(true);
    });
  }
  ~EventLoop() {
    // A break before the loop has started is forgotten: repeat until it ends.
    while (!done_.load()) {
      event_base_loopbreak(base_);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    thread_.join();
    event_base_free(base_);
  }
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  event_base* base() const { return base_; }

 private:
  event_base* base_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

using OptionsPtr = std::unique_ptr<natsOptions, decltype(&natsOptions_Destroy)>;

// Options shared by the connections of one loop (libnats copies them).
inline OptionsPtr connection_options(const PeerServer& server, EventLoop* loop) {
  natsOptions* raw = nullptr;
  check(natsOptions_Create(&raw), "natsOptions_Create");
  OptionsPtr o(raw, &natsOptions_Destroy);
  check(natsOptions_SetURL(o.get(), server_url(server).c_str()), "natsOptions_SetURL");
  if (loop != nullptr) {
    check(natsOptions_SetEventLoop(o.get(), loop->base(), natsLibevent_Attach, natsLibevent_Read, natsLibevent_Write,
                                   natsLibevent_Detach),
          "natsOptions_SetEventLoop");
    // With an event loop this asks the loop to write (no flusher thread per connection).
    check(natsOptions_SetSendAsap(o.get(), true), "natsOptions_SetSendAsap");
  }
  check(natsOptions_UseGlobalMessageDelivery(o.get(), true), "natsOptions_UseGlobalMessageDelivery");
  // JetStream API requests (consumer creation) through a short-lived synchronous
  // subscription each: the new style's response subscription has a delivery
  // thread of its own for the connection's lifetime (it never uses the global
  // pool), one idle thread per device.
  check(natsOptions_UseOldRequestStyle(o.get(), true), "natsOptions_UseOldRequestStyle");
  check(natsOptions_SetAllowReconnect(o.get(), false), "natsOptions_SetAllowReconnect");
  check(natsOptions_SetTimeout(o.get(), kConnectTimeoutMs), "natsOptions_SetTimeout");
  check(natsOptions_SetIOBufSize(o.get(), kIoBufSize), "natsOptions_SetIOBufSize");
  check(natsOptions_SetErrorHandler(o.get(), on_async_error, nullptr), "natsOptions_SetErrorHandler");
  return o;
}

// A connection, its JetStream context and (for a device) its consumer's subscription.
struct Conn {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  natsSubscription* sub = nullptr;

  Conn() = default;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() { close(); }
  // Closes the connection; a durable consumer stays on the server
  // (libnats 3.4 does not delete it without an explicit unsubscribe).
  void close() {
    if (sub != nullptr) natsSubscription_Destroy(sub);
    if (js != nullptr) jsCtx_Destroy(js);
    if (nc != nullptr) natsConnection_Destroy(nc);
    sub = nullptr;
    js = nullptr;
    nc = nullptr;
  }
};

// Connections of `conns` still connected (reconnection is off: a lost connection stays lost).
inline int connected(const std::vector<std::unique_ptr<Conn>>& conns) {
  int n = 0;
  for (const auto& c : conns) {
    if (c != nullptr && c->nc != nullptr && natsConnection_Status(c->nc) == NATS_CONN_STATUS_CONNECTED) ++n;
  }
  return n;
}

// Connects a device: the connection, then (unless `durable` is empty) its
// durable push consumer on `subject` with explicit acks, subscribed with
// `cb`. Returns an error text, empty on success.
inline std::string open_device(Conn& d, natsOptions* o, const std::string& durable, const std::string& subject,
                        natsMsgHandler cb, void* closure) {
  natsStatus s = natsConnection_Connect(&d.nc, o);
  if (s != NATS_OK) return "connect: " + nats_error(s);
  if (durable.empty()) return {};
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = kApiWaitMs;
  s = natsConnection_JetStream(&d.js, d.nc, &jo);
  if (s != NATS_OK) return "JetStream context: " + nats_error(s);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = kStream;
  so.ManualAck = true;
  so.Config.Durable = durable.c_str();
  so.Config.FilterSubject = subject.c_str();
  so.Config.AckPolicy = js_AckExplicit;
  so.Config.DeliverPolicy = js_DeliverAll;
  jsErrCode ec = static_cast<jsErrCode>(0);
  s = js_Subscribe(&d.sub, d.js, subject.c_str(), cb, closure, &jo, &so, &ec);
  if (s != NATS_OK) {
    return "consumer " + durable + ": " + nats_error(s) + (ec != 0 ? " (JetStream error " + std::to_string(ec) + ")" : "");
  }
  return {};
}

// Opens many devices with `threads` threads running the blocking calls;
// device j no earlier than start + j / rate (rate <= 0: as fast as they go),
// none started after `deadline_ns`. Returns the number opened; the first
// error in `first_error`.
struct OpenResult {
  int opened = 0;
  int failed = 0;
  int not_started = 0;
  std::string first_error;
  std::int64_t first_start_ns = 0;
  std::int64_t last_connect_ns = 0;
  LatencyHistogram latency;  // connect start -> connected and consumer created
};

struct OpenJob {
  std::vector<std::unique_ptr<Conn>>* conns = nullptr;
  natsOptions* options = nullptr;
  std::function<std::string(int)> durable;  // empty string: a bare connection
  std::function<std::string(int)> subject;
  natsMsgHandler cb = nullptr;
  void* closure = nullptr;
  double rate = 0;
  int threads = 8;
  std::int64_t deadline_ns = 0;
  std::function<void(const std::atomic<int>& opened, const std::atomic<int>& failed)> progress;  // each second
};

inline OpenResult open_devices(const OpenJob& job) {
  const int n = static_cast<int>(job.conns->size());
  std::atomic<int> next{0}, opened{0}, failed{0}, finished{0};
  std::mutex mu;
  OpenResult r;
  r.first_start_ns = INT64_MAX;
  const std::int64_t start_ns = mono_ns();
  auto worker = [&] {
    LatencyHistogram mine;
    std::int64_t first = INT64_MAX, last = 0;
    for (;;) {
      const int j = next.fetch_add(1);
      if (j >= n) break;
      if (job.rate > 0) {
        const std::int64_t due = start_ns + static_cast<std::int64_t>(static_cast<double>(j) * 1e9 / job.rate);
        const std::int64_t wait = due - mono_ns();
        if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
      }
      if (mono_ns() >= job.deadline_ns) break;
      auto& c = (*job.conns)[static_cast<std::size_t>(j)];
      c = std::make_unique<Conn>();
      const std::int64_t t0 = mono_ns();
      const std::string err = open_device(*c, job.options, job.durable(j), job.subject(j), job.cb, job.closure);
      const std::int64_t t1 = mono_ns();
      first = std::min(first, t0);
      if (err.empty()) {
        opened.fetch_add(1);
        last = std::max(last, t1);
        mine.record(std::chrono::nanoseconds(t1 - t0));
      } else {
        failed.fetch_add(1);
        c.reset();
        std::lock_guard lock(mu);
        if (r.first_error.empty()) r.first_error = err;
      }
    }
    std::lock_guard lock(mu);
    r.latency.merge(mine);
    r.first_start_ns = std::min(r.first_start_ns, first);
    r.last_connect_ns = std::max(r.last_connect_ns, last);
    finished.fetch_add(1);
  };
  const int threads = std::max(1, std::min(job.threads, n));
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(threads));
  for (int i = 0; i < threads; ++i) pool.emplace_back(worker);
  // Each call is bounded (connect and API timeouts), the whole by the deadline.
  auto next_report = clock::now() + std::chrono::seconds(1);
  while (finished.load() < threads) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (job.progress && clock::now() >= next_report) {
      next_report += std::chrono::seconds(1);
      job.progress(opened, failed);
    }
  }
  for (auto& t : pool) t.join();
  r.opened = opened.load();
  r.failed = failed.load();
  r.not_started = n - r.opened - r.failed;
  if (r.first_start_ns == INT64_MAX) r.first_start_ns = 0;
  return r;
}

// An administrative connection (no event loop: two threads of its own).
class Admin {
 public:
  explicit Admin(const PeerServer& server) {
    auto o = connection_options(server, nullptr);
    check(natsConnection_Connect(&c_.nc, o.get()), "connect to " + server_url(server));
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = kAdminWaitMs;
    check(natsConnection_JetStream(&c_.js, c_.nc, &jo), "JetStream context");
  }

  // Deletes the stream (with its consumers) and creates it again, empty.
  void recreate_stream() {
    jsErrCode ec = static_cast<jsErrCode>(0);
    natsStatus s = js_DeleteStream(c_.js, kStream, nullptr, &ec);
    if (s != NATS_OK && s != NATS_NOT_FOUND && ec != JSStreamNotFoundErr) {
      throw std::runtime_error("nats: delete stream " + std::string(kStream) + ": " + nats_error(s) +
                               " (JetStream error " + std::to_string(ec) + "); is JetStream enabled?");
    }
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char* subjects[] = {"u.>"};
    cfg.Name = kStream;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Retention = js_LimitsPolicy;
    cfg.Storage = js_FileStorage;
    cfg.MaxAge = kMaxAgeNs;
    cfg.Replicas = 1;
    jsStreamInfo* si = nullptr;
    ec = static_cast<jsErrCode>(0);
    s = js_AddStream(&si, c_.js, &cfg, nullptr, &ec);
    if (s != NATS_OK) {
      throw std::runtime_error("nats: create stream " + std::string(kStream) + ": " + nats_error(s) +
                               " (JetStream error " + std::to_string(ec) + "); is JetStream enabled?");
    }
    jsStreamInfo_Destroy(si);
  }

 private:
  Conn c_;
};

}  // namespace herald::bench::compare::jetstream
