#pragma once
// The option table: one row per option, giving its TOML key, environment
// variable (HERALD_ + upper-case key), flag (--key-with-dashes), default text
// and meaning. Loading applies, lowest precedence first: defaults, TOML file,
// environment, flags (PROTOCOL.md 9).
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/server_config.hpp"

namespace herald::config {

struct OptionSpec {
  std::string key;          // TOML key, e.g. "max_inflight"
  std::string default_text; // as documented
  std::string help;
  std::function<void(ServerConfig&, std::string_view)> apply;  // throws ConfigError
  std::string accepts;      // the range a number must be in, as documented ("1 to 65536"); empty for others
};

const std::vector<OptionSpec>& option_table();

std::string env_name(std::string_view key);   // "HERALD_MAX_INFLIGHT"
std::string flag_name(std::string_view key);  // "--max-inflight"

// Values given on the command line, by key.
using FlagValues = std::map<std::string, std::string>;

// Builds the configuration: defaults, then the TOML file (if config_file is
// non-empty), then HERALD_* variables from env (nullptr: the process
// environment), then flags. Validates the result. Throws ConfigError.
ServerConfig load_config(const std::string& config_file, const FlagValues& flags,
                         const std::map<std::string, std::string>* env = nullptr);

// Applies the options of a TOML document to c (source names it in errors).
// Throws ConfigError on a syntax error or an unknown option or value.
void apply_toml(ServerConfig& c, std::string_view text, const std::string& source);

// Checks cross-field rules; throws ConfigError.
void validate(const ServerConfig& c);

}  // namespace herald::config
