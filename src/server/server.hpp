#pragma once
// The composition root (CONVENTIONS.md L5): builds the store, the hub, the
// I/O workers, the listener and the API from a ServerConfig, runs them, and
// drains them on shutdown. The only place that names concrete backends.
// Two servers can run in one process (no global state).
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "config/server_config.hpp"

namespace herald::server {

class Server {
 public:
  // Validates, opens the store and binds the listener. Throws
  // config::ConfigError or std::runtime_error with a clear message.
  explicit Server(config::ServerConfig config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Starts the I/O threads and accepting; writes the ready file.
  void start();
  // Graceful drain (PROTOCOL.md 9): readiness false, stop accepting, close
  // connections with 1001 and a jittered retry_after, flush cursors and the
  // store queue, stop. Safe to call once from any thread.
  void drain_and_stop();

  std::string url() const;  // "http://127.0.0.1:PORT"
  const config::ServerConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::server
