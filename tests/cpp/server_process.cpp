#include "server_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <boost/json.hpp>

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
