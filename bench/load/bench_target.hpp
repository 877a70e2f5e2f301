#pragma once
// The server a bench scenario runs against: a `herald serve` the bench
// starts with the scenario's settings (the default), or one already
// running that --url names (its settings are then the operator's).
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "spawned_server.hpp"

namespace herald::bench {

struct TargetOptions {
  std::string url;      // http://HOST:PORT of a running server; empty: spawn one
  std::string api_key;  // with url
  std::string secret;   // with url: the HS256 secret, to mint client tokens
  std::string binary;   // what to spawn (the herald executable)
  std::map<std::string, std::string> server_env;  // extra HERALD_* for a spawned server
};

class BenchTarget {
 public:
  // scenario_env: the settings the scenario needs (store, sync, limits);
  // TargetOptions::server_env overrides them.
  BenchTarget(const TargetOptions& opts, std::map<std::string, std::string> scenario_env);

  const std::string& url() const { return url_; }
  std::string ws_url() const { return "ws" + url_.substr(4) + "/v1/ws"; }
  const std::string& api_key() const { return api_key_; }
  const std::string& secret() const { return secret_; }  // HS256, for clients that mint their own tokens
  std::string token(const std::string& user) const;  // valid for a day
  // The spawned server (null for --url), for RSS and restarts.
  SpawnedServer* spawned() { return server_.get(); }
  std::string describe() const;  // "spawned (store=rocksdb sync=batch)" or the URL

 private:
  std::unique_ptr<SpawnedServer> server_;
  std::map<std::string, std::string> env_;
  std::string url_;
  std::string api_key_;
  std::string secret_;
};

}  // namespace herald::bench
