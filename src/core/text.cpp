#include "core/text.hpp"

#include <cstdint>

namespace herald {

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF.
bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto lead = static_cast<unsigned char>(s[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    // Sequence length, payload bits of the lead byte, smallest code point
    // that needs this length (anything below is an overlong form).
    std::size_t len = 0;
    std::uint32_t cp = 0;
    std::uint32_t min_cp = 0;
    if ((lead & 0xE0) == 0xC0) {
      len = 2;
      cp = lead & 0x1Fu;
      min_cp = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      len = 3;
      cp = lead & 0x0Fu;
      min_cp = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      len = 4;
      cp = lead & 0x07u;
      min_cp = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto next = static_cast<unsigned char>(s[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (next & 0x3Fu);
    }
    if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

bool is_valid_user_id(std::string_view user) {
  if (user.empty() || user.size() > kMaxUserIdBytes || !is_valid_utf8(user)) return false;
  for (std::size_t i = 0; i < user.size(); ++i) {
    const auto byte = static_cast<unsigned char>(user[i]);
    if (byte < 0x20 || byte == 0x7f) return false;
    // U+0080..U+009F are C2 80..C2 9F; the input is well-formed, so a C2
    // is always followed by a continuation byte.
    if (byte == 0xC2 && static_cast<unsigned char>(user[i + 1]) <= 0x9F) return false;
  }
  return true;
}

}  // namespace herald
