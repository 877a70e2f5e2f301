// JWTs as they come in an upgrade (header, payload and signature paths):
// one HS256 and one ES256 verifier (algorithm pinned) must never crash, and
// must never accept a token the fuzzer made up without the key (the HS256
// secret is not in any seed; the ES256 private key was thrown away). Also
// base64url: what decodes re-encodes to the same text (strict decoding).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "auth/jwt.hpp"
#include "fuzz_check.hpp"

namespace {

constexpr const char* kEcPublicKey = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEmuDzLDwzSJElfrqHFoYjlojOi3dt
n1Z/FVe3PYT7alz7ePTIOLHN3G2T9iDpPcE/ZWLw9Gn3CmuKMMBtZJjhRQ==
-----END PUBLIC KEY-----
)";

const herald::auth::JwtVerifier& hs256() {
  static const herald::auth::JwtVerifier v(herald::auth::JwtConfig{
      herald::auth::JwtAlg::hs256, "fuzz-secret-that-no-seed-was-signed-with", "", "", "", std::chrono::milliseconds(30000)});
  return v;
}

const herald::auth::JwtVerifier& es256() {
  static const herald::auth::JwtVerifier v(herald::auth::JwtConfig{
      herald::auth::JwtAlg::es256, "", kEcPublicKey, "", "", std::chrono::milliseconds(30000)});
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  FUZZ_CHECK(!hs256().verify(text, 1764000000000));
  FUZZ_CHECK(!es256().verify(text, 1764000000000));
  if (auto decoded = herald::auth::base64url_decode(text)) {
    FUZZ_CHECK(herald::auth::base64url_encode(*decoded) == text);
  }
  return 0;
}
