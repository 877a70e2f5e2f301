#pragma once
// A `herald serve` started by the bench tool, so that one command measures
// a server in a known configuration (store, sync policy, limits) and can
// read its memory from /proc. Loopback, port 0, a fresh data directory
// (removed on destruction), generated secrets passed in the environment.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace herald::bench {

class SpawnedServer {
 public:
  // binary: the herald executable (the bench runs its own: /proc/self/exe).
  // env: HERALD_* settings on top of the bench's defaults.
  SpawnedServer(std::string binary, std::map<std::string, std::string> env);
  ~SpawnedServer();
  SpawnedServer(const SpawnedServer&) = delete;
  SpawnedServer& operator=(const SpawnedServer&) = delete;

  // Starts the server and waits for its ready file. Again after stop() or
  // kill(): the same data directory and the same port (a restart).
  void start(std::chrono::seconds timeout = std::chrono::seconds(30));
  int stop();   // SIGTERM, wait; the exit status (-1 when not running)
  void kill();  // SIGKILL, wait

  const std::string& url() const { return url_; }  // http://127.0.0.1:PORT
  std::string ws_url() const { return "ws" + url_.substr(4) + "/v1/ws"; }
  const std::string& secret() const { return secret_; }
  const std::string& api_key() const { return api_key_; }
  pid_t pid() const { return pid_; }
  // Resident set size of the server process, from /proc/PID/status (VmRSS).
  std::uint64_t rss_bytes() const { return proc_kb("status", "VmRSS") * 1024; }
  // A "Name:  N kB" field of /proc/PID/<file> (status, smaps_rollup), in kB; 0 when absent.
  std::uint64_t proc_kb(const std::string& file, const std::string& field) const;
  // Open file descriptors of the server process (/proc/PID/fd).
  std::uint64_t open_fds() const;

 private:
  std::string binary_;
  std::map<std::string, std::string> env_;
  std::string dir_;
  std::string secret_;
  std::string api_key_;
  std::string url_;
  int port_ = 0;  // from the first start on, so that a restart keeps the port
  pid_t pid_ = -1;
};

}  // namespace herald::bench
