// The configuration file (TOML): any text either applies or is refused with
// a ConfigError (one clear line at start-up); any other exception escaping
// is a crash of `herald serve`.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config_options.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace herald::config;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ServerConfig c;
  try {
    apply_toml(c, text, "fuzz.toml");
    validate(c);
  } catch (const ConfigError&) {
  }
  return 0;
}
