#include "spawned_server.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "core/ids.hpp"
#include "proc_stats.hpp"

extern char** environ;

namespace herald::bench {
namespace fs = std::filesystem;

SpawnedServer::SpawnedServer(std::string binary, std::map<std::string, std::string> env)
    : binary_(std::move(binary)), env_(std::move(env)) {
  dir_ = (fs::temp_directory_path() / ("herald-bench-" + random_hex(6))).string();
  fs::create_directories(dir_);
  secret_ = random_hex(32);
  api_key_ = "bench-" + random_hex(16);
}

SpawnedServer::~SpawnedServer() {
  stop();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void SpawnedServer::start(std::chrono::seconds timeout) {
  const std::string ready = dir_ + "/ready.json";
  std::error_code ignored;
  fs::remove(ready, ignored);  // a restart's readiness is the new file
  // The server inherits our file limit: raise the soft limit to the hard one,
  // since a connection scenario's server holds a socket per client.
  if (rlimit lim{}; ::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    const auto eq = kv.find('=');
    if (eq != std::string::npos && !kv.starts_with("HERALD_")) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  env["HERALD_LISTEN"] = "127.0.0.1:" + std::to_string(port_);
  env["HERALD_READY_FILE"] = ready;
  env["HERALD_DATA_DIR"] = dir_ + "/data";
  env["HERALD_JWT_SECRET"] = secret_;
  env["HERALD_API_KEYS"] = api_key_;
  env["HERALD_LOG_LEVEL"] = "warn";
  for (const auto& [k, v] : env_) env[k] = v;
  std::vector<std::string> storage;
  for (const auto& [k, v] : env) storage.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : storage) envp.push_back(s.data());
  envp.push_back(nullptr);

  const std::string log = dir_ + "/server.log";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  std::string arg0 = binary_, arg1 = "serve";
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  const int rc = posix_spawn(&pid_, binary_.c_str(), &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("bench: cannot start " + binary_);

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream f(ready);
    if (f) {
      std::stringstream ss;
      ss << f.rdbuf();
      url_ = std::string(boost::json::parse(ss.str()).as_object().at("url").as_string());
      port_ = std::stoi(url_.substr(url_.rfind(':') + 1));
      return;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      std::ifstream lf(log);
      std::stringstream ls;
      ls << lf.rdbuf();
      throw std::runtime_error("bench: the server exited at start:\n" + ls.str());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // readiness is timed by restart scenarios
  }
  kill();
  throw std::runtime_error("bench: the server was not ready in time");
}

int SpawnedServer::stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void SpawnedServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::uint64_t SpawnedServer::proc_kb(const std::string& file, const std::string& field) const {
  return bench::proc_kb(pid_, file, field);
}

std::uint64_t SpawnedServer::open_fds() const { return proc_open_fds(pid_); }

}  // namespace herald::bench
