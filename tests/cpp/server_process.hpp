#pragma once
// Runs the real `herald serve` binary for a test: port 0 on loopback, a
// fresh data directory, known secrets, extra HERALD_* settings; waits for
// the ready file. The process is stopped (SIGTERM, then SIGKILL) on
// destruction; kill() and restart() simulate crashes.
#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>

namespace herald::testing {

inline constexpr const char* kTestSecret = "cpp-e2e-secret-0123456789abcdef012345";
inline constexpr const char* kTestApiKey = "cpp-e2e-key";

class ServerProcess {
 public:
  explicit ServerProcess(std::map<std::string, std::string> env = {});
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  void start(std::chrono::seconds timeout = std::chrono::seconds(20));
  // SIGTERM and wait; returns the exit status (or -1).
  int stop();
  // SIGKILL: a crash.
  void kill();

  const std::string& url() const { return url_; }        // http://127.0.0.1:PORT
  std::string ws_url() const;                             // ws://127.0.0.1:PORT/v1/ws
  const std::string& data_dir() const { return data_dir_; }
  std::string token(const std::string& user, std::int64_t ttl_s = 3600) const;
  std::string logs() const;

 private:
  // Fails the running test (ADD_FAILURE) for each sanitizer report the
  // server wrote, keeping a copy in $HERALD_SANITIZER_LOG_DIR when set.
  void check_sanitizers();

  std::map<std::string, std::string> env_;
  std::string dir_;
  std::string data_dir_;
  std::string ready_file_;
  std::string url_;
  pid_t pid_ = -1;
  std::size_t log_checked_ = 0;  // server.log searched for sanitizer reports up to here
};

}  // namespace herald::testing
