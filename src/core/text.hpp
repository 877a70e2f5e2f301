#pragma once
// Checks on text that crosses the API: well-formed UTF-8, and the user id
// rule of PROTOCOL.md 2 and 10, shared by the token check (`sub`), publish
// (`user`, `users`) and the demo token endpoint so that all three agree.
#include <cstddef>
#include <string_view>

namespace herald {

inline constexpr std::size_t kMaxUserIdBytes = 128;

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing
// past U+10FFFF.
bool is_valid_utf8(std::string_view s);

// 1..128 bytes of UTF-8 with no control character: none of Unicode's
// category Cc, which is U+0000..U+001F, U+007F and U+0080..U+009F.
bool is_valid_user_id(std::string_view user);

}  // namespace herald
