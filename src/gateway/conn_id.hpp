#pragma once
// A connection's id as the welcome and the admin API show it: "c-" and 12
// random hex digits. Held as the 48-bit number they spell (8 bytes, since
// every idle connection keeps one) and written out when asked for.
#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "core/ids.hpp"

namespace herald::gateway {

class ConnId {
 public:
  static ConnId random() { return ConnId(std::stoull(random_hex(6), nullptr, 16)); }

  std::string str() const { return fmt::format("c-{:012x}", bits_); }

 private:
  explicit ConnId(std::uint64_t bits) : bits_(bits) {}
  std::uint64_t bits_;
};

}  // namespace herald::gateway
