#pragma once
// Real redis-server processes for tests (CONVENTIONS.md "Tests"): on a free
// loopback port, in a temporary directory, killed when the object goes (and
// by the kernel if the test process dies first). A missing
// /usr/bin/redis-server throws: the test fails, it never skips.
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace herald::testing {

inline constexpr const char* kRedisServer = "/usr/bin/redis-server";
inline constexpr const char* kRedisCli = "/usr/bin/redis-cli";

class RedisProcess {
 public:
  // Starts redis-server with the given extra arguments (e.g. --appendonly yes)
  // and waits until it answers PING. Throws std::runtime_error when it cannot.
  explicit RedisProcess(std::vector<std::string> extra_args = {});
  ~RedisProcess();
  RedisProcess(const RedisProcess&) = delete;
  RedisProcess& operator=(const RedisProcess&) = delete;

  void stop();     // SIGKILL and wait: Redis gone as in a crash
  void restart();  // the same port, directory and arguments
  bool running() const { return pid_ > 0; }

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string url() const { return "redis://" + address(); }
  const std::string& dir() const { return dir_; }

 private:
  void spawn();

  std::vector<std::string> extra_args_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// Three masters, no replicas, all slots assigned (redis-cli --cluster create).
class RedisCluster {
 public:
  RedisCluster();
  std::string url() const;  // redis+cluster://127.0.0.1:p1,...
  std::vector<std::unique_ptr<RedisProcess>>& nodes() { return nodes_; }

 private:
  std::vector<std::unique_ptr<RedisProcess>> nodes_;
};

// Sends one command to a node and returns the reply as text (status, string
// or integer) or throws.
std::string redis_command(int port, const std::vector<std::string>& args);
// The same for a command answering an array of strings.
std::vector<std::string> redis_command_list(int port, const std::vector<std::string>& args);

}  // namespace herald::testing
