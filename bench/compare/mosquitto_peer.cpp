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

#include "peers.hpp"
#include "proc_stats.hpp"
#include "progress.hpp"

namespace herald::bench::compare {

namespace {

constexpr int kKeepaliveS = 300;        // long: idle clients send no PINGREQ during a run
constexpr int kConnectTimeoutS = 10;    // one blocking TCP connect (ConnectTimer)
constexpr std::uint32_t kExtraFd = 0xffffffffU;  // epoll data of a Pool's extra fd
constexpr std::int64_t kSecond = 1000000000;
// QoS 1 publishes a publisher has in libmosquitto at once (sent, awaiting
// PUBACK); the rest wait in our own queue. libmosquitto 2.0.11 keeps a
// client's outgoing QoS 1 messages in one list and walks all of it on every
// publish and every PUBACK (message__release_to_inflight), so a long list
// makes the publisher quadratic: with 65535 allowed, a 1-second hiccup of
// the broker at 20k msg/s snowballed into minutes of client CPU. 16 x 100 in
// flight is 80 ms of 20k msg/s, far above a PUBACK's round trip.
constexpr std::size_t kPublisherWindow = 100;

std::int64_t ns_of(double seconds) { return static_cast<std::int64_t>(seconds * 1e9); }
double seconds_since(std::int64_t t_ns) { return static_cast<double>(mono_ns() - t_ns) / 1e9; }
std::string tenths(double seconds) { return format_number(std::round(seconds * 10) / 10); }

std::string mosq_error(int rc, int err) {
  if (rc == MOSQ_ERR_ERRNO) return std::strerror(err);
  return mosquitto_strerror(rc);
}

std::string describe(const PeerServer& s) { return "mosquitto at " + s.host + ":" + std::to_string(s.port); }

struct MosquittoLib {
  MosquittoLib() { mosquitto_lib_init(); }
  ~MosquittoLib() { mosquitto_lib_cleanup(); }
  MosquittoLib(const MosquittoLib&) = delete;
  MosquittoLib& operator=(const MosquittoLib&) = delete;
};

// Soft RLIMIT_NOFILE up to the hard one; a clear error when that is not `need`.
void raise_fd_limit(std::uint64_t need) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
    throw std::runtime_error("needs " + std::to_string(need) + " open files but ulimit -n is " +
                             std::to_string(rl.rlim_cur));
  }
}

// mosquitto_new() opens a socketpair per client whose only use is to wake
// the select() of mosquitto_loop() when another thread publishes, and
// writes a byte into it for every packet queued. Driven from our own epoll
// loop, nobody reads it: it would cost two more files per client (30000 for
// 10000 devices, over the 20000 limit) and kernel memory (two Unix sockets
// and a growing queue of wake-up bytes per client) that the connect
// scenario, which reads the machine's socket and slab memory, would charge
// to Mosquitto. libmosquitto only warns when the socketpair cannot be made,
// so it is made to fail: no file may be opened during the call. Call it
// while no other thread of the process opens files.
mosquitto* new_client(const std::string& id, bool clean_session, void* userdata) {
  rlimit saved{};
  ::getrlimit(RLIMIT_NOFILE, &saved);
  rlimit none = saved;
  none.rlim_cur = 0;
  ::setrlimit(RLIMIT_NOFILE, &none);
  mosquitto* m = mosquitto_new(id.c_str(), clean_session, userdata);
  const int err = errno;
  ::setrlimit(RLIMIT_NOFILE, &saved);
  if (m == nullptr) throw std::runtime_error("mosquitto_new(" + id + "): " + std::strerror(err));
  return m;
}

// libmosquitto 2.0.11's asynchronous connect never sends CONNECT when the
// TCP connect is still in progress, so connections are opened with the
// blocking mosquitto_connect_bind(): on loopback the handshake is immediate
// unless the server's listen queue is full, when the kernel retries the SYN
// for up to two minutes. A timer signalling this thread interrupts such a
// connect() (EINTR, no SA_RESTART) after kConnectTimeoutS.
class ConnectTimer {
 public:
  ConnectTimer() {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    ::sigaction(SIGALRM, &sa, nullptr);
    sigevent sev{};
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGALRM;
    sev._sigev_un._tid = ::gettid();  // sigev_notify_thread_id, which glibc 2.36 does not define
    if (::timer_create(CLOCK_MONOTONIC, &sev, &timer_) != 0) {
      throw std::runtime_error(std::string("timer_create: ") + std::strerror(errno));
    }
  }
  ~ConnectTimer() { ::timer_delete(timer_); }
  ConnectTimer(const ConnectTimer&) = delete;
  ConnectTimer& operator=(const ConnectTimer&) = delete;

  // mosquitto_connect_bind(), bounded; errno as the call left it.
  int connect(mosquitto* m, const PeerServer& s, const std::string& bind) {
    itimerspec on{};
    on.it_value.tv_sec = kConnectTimeoutS;
    ::timer_settime(timer_, 0, &on, nullptr);
    const int rc = mosquitto_connect_bind(m, s.host.c_str(), s.port, kKeepaliveS, bind.empty() ? nullptr : bind.c_str());
    const int err = errno;
    itimerspec off{};
    ::timer_settime(timer_, 0, &off, nullptr);
    errno = err;
    return rc;
  }

 private:
  timer_t timer_{};
};

struct Client;

// What a Pool's owner hears of, on the Pool's thread.
class Events {
 public:
  virtual ~Events() = default;
  virtual void message(Client&, const mosquitto_message&) {}
  virtual void puback(Client&, int /*mid*/) {}
  virtual void lost(Client&) {}  // a ready client's connection ended
};

struct Client {
  mosquitto* m = nullptr;
  class Pool* pool = nullptr;
  std::uint32_t index = 0;  // in its Pool
  std::string topic;        // subscribed (QoS 1) after each CONNACK; empty: a publisher
  std::string bind;         // source address; empty: any
  int fd = -1;              // in the Pool's epoll set; -1: not connected
  bool out = false;         // EPOLLOUT asked for
  bool ready = false;       // connected and (devices) subscribed
  bool settled = false;     // its first attempt was counted (ready or failed)
  std::int64_t start_ns = 0;  // its first connect started
};

// Clients driven by one thread: epoll over their sockets.
class Pool {
 public:
  Pool(const PeerServer& server, Events& events) : server_(server), events_(events) {
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
  }
  ~Pool() {
    for (auto& c : clients_) {
      if (c->m != nullptr) mosquitto_destroy(c->m);
    }
    ::close(ep_);
  }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Counters; the atomic ones may be read from another thread.
  std::uint64_t started = 0;                // first connects started
  std::atomic<std::uint64_t> readied{0};    // clients ready at least once
  std::atomic<std::uint64_t> failed{0};     // first attempts that failed
  std::atomic<std::uint64_t> open{0};       // ready and connected now
  std::atomic<std::uint64_t> reconnects{0};
  std::map<std::string, std::uint64_t> failures;  // why first attempts failed
  LatencyHistogram connect_latency;               // first connect start -> ready
  std::int64_t first_start_ns = 0;
  std::int64_t last_ready_ns = 0;
  bool reconnect_lost = false;  // reconnect a ready client whose connection ended (after 1 s)

  std::vector<std::unique_ptr<Client>>& clients() { return clients_; }
  std::uint64_t settled() const { return readied.load() + failed.load(); }

  Client& add(const std::string& id, bool clean_session, std::string topic, std::string bind) {
    auto c = std::make_unique<Client>();
    c->pool = this;
    c->index = static_cast<std::uint32_t>(clients_.size());
    c->topic = std::move(topic);
    c->bind = std::move(bind);
    c->m = new_client(id, clean_session, c.get());
    mosquitto_connect_callback_set(c->m, on_connect);
    mosquitto_subscribe_callback_set(c->m, on_subscribe);
    mosquitto_message_callback_set(c->m, on_message);
    mosquitto_publish_callback_set(c->m, on_publish);
    clients_.push_back(std::move(c));
    return *clients_.back();
  }

  // Watches another file (a timerfd, a pipe): poll() says when it is readable.
  void add_extra(int fd) {
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u32 = kExtraFd;
    if (::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e) != 0) throw std::runtime_error(std::string("epoll_ctl: ") + std::strerror(errno));
  }

  // Starts c's first connection: TCP connect, then CONNECT; false (and
  // counted as failed) when the TCP connection cannot be made.
  bool connect(Client& c) {
    ++started;
    c.start_ns = mono_ns();
    if (first_start_ns == 0) first_start_ns = c.start_ns;
    if (!open_socket(c)) {
      fail(c, "connect: " + last_error_);
      return false;
    }
    return true;
  }

  // One epoll_wait (up to timeout_ms) and what it reported; whether the
  // extra file is readable.
  bool poll(int timeout_ms) {
    std::array<epoll_event, 512> ev{};
    const int n = ::epoll_wait(ep_, ev.data(), static_cast<int>(ev.size()), timeout_ms);
    if (n < 0) {
      if (errno == EINTR) return false;
      throw std::runtime_error(std::string("epoll_wait: ") + std::strerror(errno));
    }
    bool extra = false;
    for (int i = 0; i < n; ++i) {
      if (ev[static_cast<std::size_t>(i)].data.u32 == kExtraFd) {
        extra = true;
        continue;
      }
      Client& c = *clients_[ev[static_cast<std::size_t>(i)].data.u32];
      if (c.fd < 0) continue;
      int rc = MOSQ_ERR_SUCCESS;
      if ((ev[static_cast<std::size_t>(i)].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) rc = mosquitto_loop_read(c.m, 1);
      after_io(c, rc);
    }
    return extra;
  }

  // After publishing or disconnecting from outside a callback: writes what
  // libmosquitto could not write at once when the socket is writable.
  void after_io(Client& c, int rc) {
    if (rc == MOSQ_ERR_SUCCESS && mosquitto_socket(c.m) >= 0 && mosquitto_want_write(c.m)) rc = mosquitto_loop_write(c.m, 1);
    if (rc != MOSQ_ERR_SUCCESS || mosquitto_socket(c.m) < 0) {
      ended(c, rc);
      return;
    }
    const bool want = mosquitto_want_write(c.m);
    if (want == c.out) return;
    epoll_event e{};
    e.events = EPOLLIN | (want ? EPOLLOUT : 0U);
    e.data.u32 = c.index;
    ::epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &e);
    c.out = want;
  }

  // Keepalive (mosquitto_loop_misc) every 5 s, reconnections when due.
  void service() {
    const std::int64_t now = mono_ns();
    if (now >= next_misc_ns_) {
      next_misc_ns_ = now + 5 * kSecond;
      for (auto& c : clients_) {
        if (c->fd >= 0) after_io(*c, mosquitto_loop_misc(c->m));
      }
    }
    while (!to_reconnect_.empty() && to_reconnect_.front().first <= now) {
      Client& c = *clients_[to_reconnect_.front().second];
      to_reconnect_.erase(to_reconnect_.begin());
      if (c.fd >= 0) continue;
      reconnects.fetch_add(1);
      if (!open_socket(c)) to_reconnect_.emplace_back(now + kSecond, c.index);
    }
  }

  // DISCONNECT on every connection (sessions persist), sockets closed.
  void disconnect_all() {
    for (auto& c : clients_) {
      if (c->fd < 0) continue;
      mosquitto_disconnect(c->m);
      if (mosquitto_socket(c->m) >= 0) mosquitto_loop_write(c->m, 1);
      c->fd = -1;
      c->ready = false;
    }
    open.store(0);
  }

  // n clients never started (out of time), counted as failed first attempts.
  void not_started(std::uint64_t n, const std::string& why) {
    if (n == 0) return;
    failed.fetch_add(n);
    failures[why] += n;
  }

  std::string failures_text() const {
    std::string out;
    for (const auto& [why, n] : failures) out += "  " + std::to_string(n) + " x " + why + "\n";
    return out;
  }

 private:
  bool open_socket(Client& c) {
    thread_local ConnectTimer timer;
    const int rc = timer.connect(c.m, server_, c.bind);
    if (rc != MOSQ_ERR_SUCCESS) {
      last_error_ = rc == MOSQ_ERR_ERRNO && errno == EINTR
                        ? "no TCP handshake in " + std::to_string(kConnectTimeoutS) + " s (listen queue full?)"
                        : mosq_error(rc, errno);
      return false;
    }
    c.fd = mosquitto_socket(c.m);
    c.out = mosquitto_want_write(c.m);
    epoll_event e{};
    e.events = EPOLLIN | (c.out ? EPOLLOUT : 0U);
    e.data.u32 = c.index;
    if (::epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &e) != 0) throw std::runtime_error(std::string("epoll_ctl: ") + std::strerror(errno));
    return true;
  }

  void fail(Client& c, const std::string& why) {
    if (c.settled) return;
    c.settled = true;
    failed.fetch_add(1);
    ++failures[why];
  }

  void set_ready(Client& c) {
    if (c.ready) return;
    c.ready = true;
    open.fetch_add(1);
    if (c.settled) return;
    c.settled = true;
    last_ready_ns = mono_ns();
    connect_latency.record(std::chrono::nanoseconds(last_ready_ns - c.start_ns));
    readied.fetch_add(1);
  }

  // libmosquitto closed c's socket (epoll forgot it with the file).
  void ended(Client& c, int rc) {
    c.fd = -1;
    c.out = false;
    if (mosquitto_socket(c.m) >= 0) {  // an error on an open socket: give it up
      mosquitto_disconnect(c.m);
      if (mosquitto_socket(c.m) >= 0) mosquitto_loop_write(c.m, 1);
    }
    if (!c.settled) {
      fail(c, rc == MOSQ_ERR_SUCCESS ? std::string("closed before it was ready") : "lost before it was ready: " + mosq_error(rc, errno));
      return;
    }
    if (!c.ready) return;
    c.ready = false;
    open.fetch_sub(1);
    events_.lost(c);
    if (reconnect_lost) to_reconnect_.emplace_back(mono_ns() + kSecond, c.index);
  }

  static void on_connect(mosquitto* m, void* obj, int rc) {
    auto& c = *static_cast<Client*>(obj);
    if (rc != 0) {
      c.pool->fail(c, std::string("CONNACK: ") + mosquitto_connack_string(rc));
      mosquitto_disconnect(m);
      return;
    }
    if (c.topic.empty()) {
      c.pool->set_ready(c);
      return;
    }
    const int s = mosquitto_subscribe(m, nullptr, c.topic.c_str(), 1);
    if (s != MOSQ_ERR_SUCCESS) {
      c.pool->fail(c, "SUBSCRIBE: " + mosq_error(s, errno));
      mosquitto_disconnect(m);
    }
  }
  static void on_subscribe(mosquitto* m, void* obj, int, int qos_count, const int* granted) {
    auto& c = *static_cast<Client*>(obj);
    if (qos_count < 1 || granted[0] > 2) {
      c.pool->fail(c, "SUBACK: subscription refused");
      mosquitto_disconnect(m);
      return;
    }
    c.pool->set_ready(c);
  }
  static void on_message(mosquitto*, void* obj, const mosquitto_message* msg) {
    auto& c = *static_cast<Client*>(obj);
    c.pool->events_.message(c, *msg);
  }
  static void on_publish(mosquitto*, void* obj, int mid) {
    auto& c = *static_cast<Client*>(obj);
    c.pool->events_.puback(c, mid);
  }

  const PeerServer& server_;
  Events& events_;
  int ep_ = -1;
  std::vector<std::unique_ptr<Client>> clients_;
  std::vector<std::pair<std::int64_t, std::uint32_t>> to_reconnect_;
  std::int64_t next_misc_ns_ = 0;
  std::string last_error_;
};

// ---------------------------------------------------------------- fanout

// What the devices received in the run being measured, written on the
// devices' thread.
struct Receipts {
  std::mutex mu;
  int run = 0;  // messages of other runs (and of earlier invocations) are ignored
  std::int64_t run_start_ns = 0;
  std::int64_t window_start_ns = 0;
  std::uint64_t total = 0;            // messages the run issues
  std::vector<std::uint64_t> seen;    // bit k: message k received
  std::uint64_t received = 0;         // distinct
  std::uint64_t duplicates = 0;       // a message received again
  std::uint64_t ignored = 0;          // other runs, malformed
  LatencyHistogram latency;           // intended publish time -> receipt
};

// {"r":run,"i":k,"t":intended_ns,"pad":"..."}
std::string data_json(int run, std::uint64_t k, std::int64_t t, const std::string& pad) {
  return R"({"r":)" + std::to_string(run) + R"(,"i":)" + std::to_string(k) + R"(,"t":)" + std::to_string(t) +
         R"(,"pad":")" + pad + R"("})";
}

class DeviceEvents : public Events {
 public:
  explicit DeviceEvents(Receipts& r) : r_(r) {}
  void message(Client&, const mosquitto_message& msg) override {
    const std::int64_t now = mono_ns();
    boost::system::error_code ec;
    const auto v = boost::json::parse(
        std::string_view(static_cast<const char*>(msg.payload), static_cast<std::size_t>(std::max(0, msg.payloadlen))), ec);
    const boost::json::object* o = !ec && v.is_object() ? &v.as_object() : nullptr;
    const auto* r = o != nullptr ? o->if_contains("r") : nullptr;
    const auto* i = o != nullptr ? o->if_contains("i") : nullptr;
    const auto* t = o != nullptr ? o->if_contains("t") : nullptr;
    std::lock_guard lock(r_.mu);
    if (r == nullptr || i == nullptr || t == nullptr || !r->is_int64() || !i->is_int64() || !t->is_int64() ||
        r->as_int64() != r_.run || t->as_int64() < r_.run_start_ns || i->as_int64() < 0 ||
        static_cast<std::uint64_t>(i->as_int64()) >= r_.total) {
      ++r_.ignored;
      return;
    }
    const auto k = static_cast<std::uint64_t>(i->as_int64());
    std::uint64_t& word = r_.seen[k / 64];
    const std::uint64_t bit = std::uint64_t{1} << (k % 64);
    if ((word & bit) != 0) {
      ++r_.duplicates;
      return;
    }
    word |= bit;
    ++r_.received;
    if (t->as_int64() >= r_.window_start_ns) r_.latency.record(std::chrono::nanoseconds(now - t->as_int64()));
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

// PUBACKed messages not (yet) received.
std::uint64_t count_missing(const std::vector<std::uint64_t>& acked, Receipts& receipts) {
  std::lock_guard lock(receipts.mu);
  std::uint64_t n = 0;
  for (std::size_t w = 0; w < acked.size() && w < receipts.seen.size(); ++w) n += static_cast<std::uint64_t>(std::popcount(acked[w] & ~receipts.seen[w]));
  return n;
}

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
  const std::string pad(static_cast<std::size_t>(std::max(0, opts.data_bytes - 48)), 'x');
  auto& pubs = publishers.clients();
  int run_id = 0;
  for (const double rate : opts.rates) {
    ++run_id;
    std::mt19937_64 rng(static_cast<std::uint64_t>(run_id));
    std::uniform_int_distribution<int> pick(0, users - 1);
    const auto total = static_cast<std::uint64_t>(std::llround(rate * (opts.warmup_s + opts.duration_s)));
    const std::int64_t start_ns = mono_ns();
    const std::int64_t window_ns = start_ns + ns_of(opts.warmup_s);
    {
      std::lock_guard lock(receipts.mu);
      receipts.run = run_id;
      receipts.run_start_ns = start_ns;
      receipts.window_start_ns = window_ns;
      receipts.total = total;
      receipts.seen.assign((total + 63) / 64, 0);
      receipts.received = receipts.duplicates = receipts.ignored = 0;
      receipts.latency = LatencyHistogram();
    }
    pub_events.reset(pubs.size(), total, window_ns);
    std::uint64_t issued = 0;
    std::size_t next_pub = 0;
    const auto received_now = [&] {
      std::lock_guard lock(receipts.mu);
      return receipts.received;
    };
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
        const std::string payload = data_json(run_id, m.k, m.intended_ns, pad);
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
    std::uint64_t missing = count_missing(pub_events.acked, receipts);
    while (missing > 0 && mono_ns() < drain_deadline) {
      publishers.poll(20);
      if (mono_ns() >= next_line) {
        next_line += kSecond;
        show_progress(run_line(), false);
        check_devices();
      }
      missing = count_missing(pub_events.acked, receipts);
    }
    show_progress(run_line(), true);
    check_devices();
    LatencyHistogram delivered;
    std::uint64_t received = 0, duplicates = 0, ignored = 0;
    {
      std::lock_guard lock(receipts.mu);
      delivered = receipts.latency;
      received = receipts.received;
      duplicates = receipts.duplicates;
      ignored = receipts.ignored;
    }
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
