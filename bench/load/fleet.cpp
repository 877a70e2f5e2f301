#include "fleet.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iostream>
#include <stdexcept>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/json.hpp>

#include "bench_report.hpp"
#include "progress.hpp"

extern char** environ;

namespace herald::bench {

namespace asio = boost::asio;

// One worker process: its pid, its pipes, what it last said.
struct Fleet::Worker {
  explicit Worker(asio::io_context& ioc) : out(ioc) {}
  pid_t pid = -1;
  int in_fd = -1;                     // its stdin
  asio::posix::stream_descriptor out; // its stdout
  asio::streambuf buf;
  boost::json::object status;         // latest status line
  std::vector<boost::json::object> reports;
  bool exited = false;                // its stdout closed
};

namespace {

std::uint64_t u64(const boost::json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  boost::system::error_code ec;
  return v != nullptr ? v->to_number<std::uint64_t>(ec) : 0;
}

std::int64_t i64(const boost::json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  boost::system::error_code ec;
  return v != nullptr ? v->to_number<std::int64_t>(ec) : 0;
}

void write_all(int fd, const std::string& s) {
  std::size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n <= 0) return;  // the worker is gone; its status says so
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

Fleet::Fleet(FleetOptions opts) : opts_(std::move(opts)) {
  ::signal(SIGPIPE, SIG_IGN);  // a dead worker must not kill the bench
  const int per = std::max(1, opts_.per_worker);
  const int n = (opts_.clients + per - 1) / per;
  if (n > 250) throw std::runtime_error("bench: more than 250 workers (loopback addresses 127.0.0.2..251)");
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!std::string_view(*e).starts_with(std::string(kFleetSecretEnv) + "=")) env_storage.emplace_back(*e);
  }
  env_storage.push_back(std::string(kFleetSecretEnv) + "=" + opts_.secret);
  std::vector<char*> envp;
  for (auto& s : env_storage) envp.push_back(s.data());
  envp.push_back(nullptr);

  int first = 0;
  for (int i = 0; i < n; ++i) {
    // Even shares: 19000 over 4 workers is 4750 each, not 5000+5000+5000+4000.
    const int count = opts_.clients / n + (i < opts_.clients % n ? 1 : 0);
    int to_child[2], from_child[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0) {
      throw std::runtime_error("bench: pipe failed");
    }
    std::vector<std::string> args = {opts_.binary,
                                     "bench",
                                     "worker",
                                     "--ws-url",
                                     opts_.ws_url,
                                     "--local-address",
                                     "127.0.0." + std::to_string(2 + i),
                                     "--first",
                                     std::to_string(first),
                                     "--count",
                                     std::to_string(count),
                                     "--rate",
                                     format_number(opts_.rate / n),
                                     "--user-prefix",
                                     opts_.user_prefix,
                                     "--connect-timeout",
                                     std::to_string(opts_.connect_timeout.count())};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, to_child[0], 0);
    posix_spawn_file_actions_adddup2(&actions, from_child[1], 1);
    auto w = std::make_shared<Worker>(ioc_);
    const int rc = posix_spawn(&w->pid, opts_.binary.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    ::close(to_child[0]);
    ::close(from_child[1]);
    if (rc != 0) {
      ::close(to_child[1]);
      ::close(from_child[0]);
      for (auto& started : workers_) {  // no destructor runs for a half-built Fleet
        ::close(started->in_fd);
        ::kill(started->pid, SIGKILL);
        ::waitpid(started->pid, nullptr, 0);
      }
      throw std::runtime_error("bench: cannot start a worker: " + opts_.binary);
    }
    w->in_fd = to_child[1];
    w->out.assign(from_child[0]);
    workers_.push_back(w);
    first += count;
  }
  for (auto& w : workers_) do_read(w);
  thread_ = std::thread([this] { ioc_.run(); });
}

Fleet::~Fleet() { stop(); }

void Fleet::do_read(const std::shared_ptr<Worker>& w) {
  asio::async_read_until(w->out, w->buf, '\n', [this, w](const boost::system::error_code& ec, std::size_t n) {
    if (ec) {
      std::lock_guard lock(mu_);
      w->exited = true;
      return;
    }
    std::string line(asio::buffers_begin(w->buf.data()), asio::buffers_begin(w->buf.data()) + static_cast<std::ptrdiff_t>(n) - 1);
    w->buf.consume(n);
    on_line(*w, line);
    do_read(w);
  });
}

void Fleet::on_line(Worker& w, const std::string& line) {
  boost::system::error_code ec;
  auto v = boost::json::parse(line, ec);
  if (ec || !v.is_object()) {
    std::cerr << "bench: a worker said: " << line << "\n";
    return;
  }
  auto& o = v.as_object();
  const auto* type = o.if_contains("type");
  std::lock_guard lock(mu_);
  if (type != nullptr && *type == "status") {
    w.status = std::move(o);
  } else if (type != nullptr && *type == "report") {
    w.reports.push_back(std::move(o));
  }
}

void Fleet::command(const std::string& line) {
  for (auto& w : workers_) write_all(w->in_fd, line + "\n");
}

FleetStatus Fleet::status() const {
  FleetStatus s;
  std::lock_guard lock(mu_);
  for (const auto& w : workers_) {
    if (!w->exited) ++s.workers;
    s.started += u64(w->status, "started");
    s.open += u64(w->status, "open");
    s.welcomed += u64(w->status, "welcomed");
    s.resumed += u64(w->status, "resumed");
    s.received += u64(w->status, "received");
    s.duplicates += u64(w->status, "duplicates");
    s.complete += u64(w->status, "complete");
  }
  return s;
}

bool Fleet::wait_for(const std::function<bool(const FleetStatus&)>& done, std::chrono::milliseconds timeout,
                     const std::function<std::string(const FleetStatus&)>& line) {
  const auto start = std::chrono::steady_clock::now();
  auto next_draw = start + std::chrono::seconds(1);
  for (;;) {
    const FleetStatus s = status();
    const bool ok = done(s);
    const auto now = std::chrono::steady_clock::now();
    if (ok || now - start >= timeout || s.workers < workers()) {
      show_progress(line(s), true);
      return ok;
    }
    if (now >= next_draw) {
      show_progress(line(s), false);
      next_draw += std::chrono::seconds(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

FleetReport Fleet::report(std::int64_t t0_ns, std::chrono::seconds timeout) {
  std::size_t before = 0;
  {
    std::lock_guard lock(mu_);
    for (auto& w : workers_) before = std::max(before, w->reports.size());
  }
  command("report " + std::to_string(t0_ns));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  FleetReport r;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      bool all = true;
      for (auto& w : workers_) all = all && w->reports.size() > before;
      if (all) break;
    }
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("bench: a worker did not report");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::lock_guard lock(mu_);
  for (auto& w : workers_) {
    const auto& o = w->reports.back();
    r.connect.merge(LatencyHistogram::from_json(o.at("connect")));
    r.resume.merge(LatencyHistogram::from_json(o.at("resume")));
    r.all_received.merge(LatencyHistogram::from_json(o.at("all_received")));
    r.clients += u64(o, "clients");
    r.lost += u64(o, "lost");
    r.duplicates += u64(o, "duplicates");
    r.redelivered += u64(o, "redelivered");
    r.reconnects += u64(o, "reconnects");
    const std::int64_t fs = i64(o, "first_start_ns");
    if (fs > 0 && (r.first_start_ns == 0 || fs < r.first_start_ns)) r.first_start_ns = fs;
    r.last_connect_ns = std::max(r.last_connect_ns, i64(o, "last_connect_ns"));
    r.last_resume_ns = std::max(r.last_resume_ns, i64(o, "last_resume_ns"));
    r.last_complete_ns = std::max(r.last_complete_ns, i64(o, "last_complete_ns"));
    if (const auto* e = o.if_contains("endings"); e != nullptr && e->is_object()) {
      for (const auto& [k, v] : e->get_object()) r.endings[std::string(k)] += v.to_number<std::uint64_t>();
    }
  }
  return r;
}

void Fleet::stop() {
  if (stopped_) return;
  stopped_ = true;
  command("stop");
  for (auto& w : workers_) {
    ::close(w->in_fd);
    // Closing 5000 connections takes a moment; a worker stuck past that is killed.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    int status = 0;
    while (::waitpid(w->pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(w->pid, SIGKILL);
        ::waitpid(w->pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ioc_.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace herald::bench
