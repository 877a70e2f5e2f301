#include "server_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "auth/jwt.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"

extern char** environ;

namespace herald::testing {
namespace fs = std::filesystem;

ServerProcess::ServerProcess(std::map<std::string, std::string> env) : env_(std::move(env)) {
  dir_ = (fs::temp_directory_path() / ("herald-cpp-e2e-" + random_hex(6))).string();
  fs::create_directories(dir_);
  data_dir_ = dir_ + "/data";
  ready_file_ = dir_ + "/ready.json";
}

ServerProcess::~ServerProcess() {
  stop();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string ServerProcess::ws_url() const { return "ws" + url_.substr(4) + "/v1/ws"; }

void ServerProcess::start(std::chrono::seconds timeout) {
  std::error_code ec;
  fs::remove(ready_file_, ec);
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos && !kv.starts_with("HERALD_")) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  env["HERALD_LISTEN"] = "127.0.0.1:0";
  env["HERALD_READY_FILE"] = ready_file_;
  env["HERALD_DATA_DIR"] = data_dir_;
  env["HERALD_STORE"] = "memory";
  env["HERALD_JWT_SECRET"] = kTestSecret;
  env["HERALD_API_KEYS"] = kTestApiKey;
  env["HERALD_IO_THREADS"] = "2";
  for (const auto& [k, v] : env_) env[k] = v;
  // Sanitized builds: reports go to <dir>/sanitizer.<pid>, checked when the
  // server ends (check_sanitizers), not to the log that is deleted with dir_.
  for (const char* var : {"ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS"}) {
    auto& opts = env[var];
    opts += (opts.empty() ? "" : ":") + std::string("log_path=") + dir_ + "/sanitizer";
  }
  std::vector<std::string> storage;
  for (const auto& [k, v] : env) storage.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : storage) envp.push_back(s.data());
  envp.push_back(nullptr);

  const std::string bin = HERALD_BIN;
  const std::string log = dir_ + "/server.log";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  std::string arg0 = bin, arg1 = "serve";
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  const int rc = posix_spawn(&pid_, bin.c_str(), &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot spawn " + bin);

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(ready_file_)) {
      std::ifstream in(ready_file_);
      std::stringstream ss;
      ss << in.rdbuf();
      url_ = std::string(boost::json::parse(ss.str()).as_object().at("url").as_string());
      return;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      check_sanitizers();
      throw std::runtime_error("herald exited during start: " + logs());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("herald not ready in time: " + logs());
}

int ServerProcess::stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  for (int i = 0; i < 400; ++i) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      check_sanitizers();
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill();
  return -1;
}

void ServerProcess::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  check_sanitizers();
}

void ServerProcess::check_sanitizers() {
  const char* keep = std::getenv("HERALD_SANITIZER_LOG_DIR");
  const bool keeping = keep != nullptr && *keep != '\0';
  const std::string keep_as = fs::path(dir_).filename().string() + ".";
  std::error_code ec;
  bool found = false;
  std::vector<fs::path> reports;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    if (e.path().filename().string().starts_with("sanitizer.")) reports.push_back(e.path());
  }
  for (const auto& path : reports) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    if (keeping) {
      fs::create_directories(keep, ec);
      fs::copy_file(path, fs::path(keep) / (keep_as + path.filename().string()), ec);
    }
    fs::remove(path, ec);
    ADD_FAILURE() << "herald wrote a sanitizer report:\n" << ss.str();
    found = true;
  }
  // GCC's libubsan ignores log_path when libasan is loaded too: its reports
  // stay on stderr, in server.log, searched from where the last check ended.
  const std::string log = logs();
  const std::string fresh = log.size() > log_checked_ ? log.substr(log_checked_) : std::string();
  log_checked_ = log.size();
  std::size_t at = std::string::npos;
  for (const char* marker : {"runtime error: ", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                             "WARNING: ThreadSanitizer"}) {
    at = std::min(at, fresh.find(marker));
  }
  if (at != std::string::npos) {
    const std::size_t line = fresh.rfind('\n', at);
    ADD_FAILURE() << "herald wrote a sanitizer report to its log:\n"
                  << fresh.substr(line == std::string::npos ? 0 : line + 1, 20000);
    found = true;
  }
  if (found && keeping) {
    fs::create_directories(keep, ec);
    fs::copy_file(dir_ + "/server.log", fs::path(keep) / (keep_as + "server.log"),
                  fs::copy_options::overwrite_existing, ec);
  }
}

std::string ServerProcess::token(const std::string& user, std::int64_t ttl_s) const {
  boost::json::object claims{{"sub", user}, {"exp", unix_ms_now() / 1000 + ttl_s}};
  return auth::sign_hs256(claims, kTestSecret);
}

std::string ServerProcess::logs() const {
  std::ifstream in(dir_ + "/server.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace herald::testing
