#pragma once
// Fills in secrets the operator did not configure: the HS256 JWT secret and
// the API keys are read from DATA_DIR/secrets.toml, or generated into it
// (mode 0600) the first time. Never hard-coded.
#include <string>
#include <vector>

#include "config/server_config.hpp"

namespace herald::config {

// Returns one warning line per secret that came from the file or was generated.
// Throws ConfigError when the data directory or the file cannot be used.
std::vector<std::string> resolve_secrets(ServerConfig& c);

// Reads the JWT secret and first API key from DATA_DIR/secrets.toml without
// creating anything (for `herald token` / `herald publish`). Empty if absent.
struct StoredSecrets {
  std::string jwt_secret;
  std::vector<std::string> api_keys;
};
StoredSecrets read_stored_secrets(const std::string& data_dir);

// The host name, for node_id's default.
std::string host_name();

}  // namespace herald::config
