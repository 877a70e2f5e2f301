#pragma once
// JWT verification for connecting clients (PROTOCOL.md 2, 9, 10 "Connecting")
// and signing for `herald token` and tests. Pure logic: no sockets, no clock
// of its own (the caller passes the wall clock in), no knowledge of where the
// token came from (header, query or cookie is the gateway's business).
#include <boost/assert/source_location.hpp>
#include <boost/json.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace herald::auth {

// The one algorithm a server accepts is fixed by configuration, never by the
// token's header (PROTOCOL.md 2).
enum class JwtAlg { hs256, rs256, es256 };

// Parses "HS256"/"RS256"/"ES256" (case-sensitive as in PROTOCOL.md 9); nullopt otherwise.
std::optional<JwtAlg> parse_jwt_alg(std::string_view name);
std::string_view jwt_alg_name(JwtAlg alg);

struct JwtConfig {
  JwtAlg alg = JwtAlg::hs256;                 // HERALD_JWT_ALG; HS256 is the PROTOCOL.md 9 default
  std::string secret;                         // HS256 shared secret
  std::string public_key_pem;                 // RS256 / ES256 public key (PEM text, not a path)
  std::string issuer;                         // required `iss` when non-empty
  std::string audience;                       // required `aud` when non-empty (claim: string or array)
  std::chrono::milliseconds leeway{30000};    // clock skew allowed on exp/nbf; PROTOCOL.md 9 default
};

// What a verified token says about the connecting client.
struct Claims {
  std::string sub;                  // user id: 1..128 bytes of UTF-8, no control characters
  std::optional<std::string> dev;   // "dev" claim, the device id fallback of PROTOCOL.md 2
  std::int64_t exp = 0;             // expiry, unix seconds (required)
  std::optional<std::int64_t> nbf;  // not-before, unix seconds
};

// Every one of these is a 401 before the upgrade (PROTOCOL.md 2, 10).
enum class JwtError {
  malformed,        // not three base64url parts, header/payload not JSON objects, bad claim types
  wrong_algorithm,  // header "alg" is not exactly the configured algorithm
  bad_signature,    // signature does not verify under the configured key
  expired,          // now > exp + leeway
  not_yet_valid,    // now + leeway < nbf
  missing_exp,      // no numeric exp claim
  bad_issuer,       // iss configured and the claim differs or is absent
  bad_audience,     // aud configured and the claim neither equals nor contains it
  bad_subject,      // sub missing, not a string, empty, > 128 bytes, bad UTF-8 or control chars
};

// Short human text, e.g. "token expired"; safe to send to the client.
std::string_view jwt_error_message(JwtError e);

// Lets result<Claims, JwtError>::value() throw std::runtime_error with the message above.
[[noreturn]] void throw_exception_from_error(const JwtError& e, const boost::source_location& loc);

// Verifies compact JWS tokens against one configured algorithm and key.
// Owns the parsed key (an EVP_PKEY for RS256/ES256, parsed once at
// construction). Thread-safety: verify() and config() are const and may be
// called concurrently from any number of I/O threads; the key is shared
// read-only and each call makes its own OpenSSL contexts. It does not know
// what the user or device ids mean beyond the syntax rules of PROTOCOL.md 2.
class JwtVerifier {
 public:
  // Throws std::invalid_argument with a clear message on bad config (empty
  // secret for HS256, unparsable PEM or key type not matching alg for
  // RS256/ES256, negative leeway). Called at start-up.
  explicit JwtVerifier(JwtConfig config);
  ~JwtVerifier();
  JwtVerifier(JwtVerifier&&) noexcept;
  JwtVerifier& operator=(JwtVerifier&&) noexcept;

  // now_unix_ms is the current wall clock in ms. Expired if
  // now > exp*1000 + leeway; not yet valid if now + leeway < nbf*1000.
  [[nodiscard]] boost::system::result<Claims, JwtError> verify(std::string_view token,
                                                               std::int64_t now_unix_ms) const;
  const JwtConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Signs claims as a compact HS256 JWT. Used by `herald token` and by tests.
// Throws std::invalid_argument on an empty secret.
std::string sign_hs256(const boost::json::object& claims, std::string_view secret);

// private_key_pem: RSA key for RS256, EC P-256 key for ES256 (ES256 signature
// in JOSE raw R||S form, 64 bytes). Throws std::invalid_argument on hs256, an
// unparsable or encrypted key, or a key not matching alg.
std::string sign_with_private_key(JwtAlg alg, const boost::json::object& claims,
                                  std::string_view private_key_pem);

// Base64url without padding (RFC 7515 section 2); decode returns nullopt on
// invalid input: padding, characters outside the alphabet, an impossible
// length, or non-zero unused bits.
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace herald::auth
