#pragma once
// A connection's id as the welcome and the admin API show it: "c-" and 12
// random hex digits. Held as its 14 characters, not as a std::string, since
// every idle connection keeps one.
#include <algorithm>
#include <array>
#include <string>
#include <string_view>

#include "core/ids.hpp"

namespace herald::gateway {

class ConnId {
 public:
  static ConnId random() {
    ConnId id;
    const std::string hex = "c-" + random_hex(6);
    std::copy_n(hex.begin(), id.text_.size(), id.text_.begin());
    return id;
  }

  std::string_view view() const { return {text_.data(), text_.size()}; }
  std::string str() const { return std::string(view()); }

 private:
  ConnId() = default;
  std::array<char, 14> text_{};
};

}  // namespace herald::gateway
