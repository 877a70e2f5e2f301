#pragma once
// How JSON is parsed wherever Herald reads it: publish bodies and frames,
// the server's and the SDK's. Boost.JSON's default depth, 32, refused
// ordinary nested `data` (PROTOCOL.md 10: any JSON value); a cap stays,
// since the parser keeps state per level. Deeper is refused as too deep,
// not as invalid.
#include <cstddef>

#include <boost/json/parse_options.hpp>

namespace herald::protocol {

inline constexpr std::size_t kMaxJsonDepth = 256;

inline boost::json::parse_options json_parse_options() {
  boost::json::parse_options o;
  o.max_depth = kMaxJsonDepth;
  return o;
}

}  // namespace herald::protocol
