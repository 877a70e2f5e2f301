#pragma once
// The client side of the Mosquitto peer (bench/compare): libmosquitto
// clients driven by our own epoll loop, one Pool per thread, instead of
// libmosquitto's thread per client. Used by mosquitto_peer.cpp's fanout
// and connect scenarios; the notes on libmosquitto 2.0.11's quirks that
// shaped it are next to the code they explain.

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
#include "progress.hpp"

namespace herald::bench::compare::mqtt {


inline constexpr int kKeepaliveS = 300;        // long: idle clients send no PINGREQ during a run
inline constexpr int kConnectTimeoutS = 10;    // one blocking TCP connect (ConnectTimer)
inline constexpr std::uint32_t kExtraFd = 0xffffffffU;  // epoll data of a Pool's extra fd
inline constexpr std::int64_t kSecond = 1000000000;
// QoS 1 publishes a publisher has in libmosquitto at once (sent, awaiting
// PUBACK); the rest wait in our own queue. libmosquitto 2.0.11 keeps a
// client's outgoing QoS 1 messages in one list and walks all of it on every
// publish and every PUBACK (message__release_to_inflight), so a long list
// makes the publisher quadratic: with 65535 allowed, a 1-second hiccup of
// the broker at 20k msg/s snowballed into minutes of client CPU. 16 x 100 in
// flight is 80 ms of 20k msg/s, far above a PUBACK's round trip.
inline constexpr std::size_t kPublisherWindow = 100;

inline std::int64_t ns_of(double seconds) { return static_cast<std::int64_t>(seconds * 1e9); }
inline double seconds_since(std::int64_t t_ns) { return static_cast<double>(mono_ns() - t_ns) / 1e9; }
inline std::string tenths(double seconds) { return format_number(std::round(seconds * 10) / 10); }

inline std::string mosq_error(int rc, int err) {
  if (rc == MOSQ_ERR_ERRNO) return std::strerror(err);
  return mosquitto_strerror(rc);
}

inline std::string describe(const PeerServer& s) { return "mosquitto at " + s.host + ":" + std::to_string(s.port); }

struct MosquittoLib {
  MosquittoLib() { mosquitto_lib_init(); }
  ~MosquittoLib() { mosquitto_lib_cleanup(); }
  MosquittoLib(const MosquittoLib&) = delete;
  MosquittoLib& operator=(const MosquittoLib&) = delete;
};

// Soft RLIMIT_NOFILE up to the hard one; a clear error when that is not `need`.
inline void raise_fd_limit(std::uint64_t need) {
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
inline mosquitto* new_client(const std::string& id, bool clean_session, void* userdata) {
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

}  // namespace herald::bench::compare::mqtt
