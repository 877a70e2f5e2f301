// JWT verification (PROTOCOL.md 2, 10 "Connecting"; RFC 7515, 7518, 7519).
#include "auth/jwt.hpp"

#include "auth/jws_crypto.hpp"
#include "core/text.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace herald::auth {
namespace {

namespace json = boost::json;
using Result = boost::system::result<Claims, JwtError>;

// Tokens arrive in a header, a query parameter or a cookie, all bounded far
// below this by the HTTP parser; a longer one is refused before any decoding.
constexpr std::size_t kMaxTokenBytes = 16 * 1024;

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kInt64Min = std::numeric_limits<std::int64_t>::min();

// exp, nbf and leeway come from outside: clamp instead of overflowing.
std::int64_t saturating_add(std::int64_t a, std::int64_t b) {
  std::int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) return b > 0 ? kInt64Max : kInt64Min;
  return sum;
}

std::int64_t saturating_mul(std::int64_t a, std::int64_t b) {
  std::int64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) return (a < 0) != (b < 0) ? kInt64Min : kInt64Max;
  return product;
}

// Rounding of a fractional NumericDate (RFC 7519 2): down for exp, up for
// nbf, so a fraction never widens the validity window.
enum class Rounding { down, up };

std::optional<std::int64_t> numeric_date(const json::value& v, Rounding rounding) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) {
    const std::uint64_t u = v.get_uint64();
    return u > static_cast<std::uint64_t>(kInt64Max) ? kInt64Max : static_cast<std::int64_t>(u);
  }
  if (v.is_double()) {
    const double d = rounding == Rounding::down ? std::floor(v.get_double()) : std::ceil(v.get_double());
    if (std::isnan(d)) return std::nullopt;
    // 2^63 is exactly representable; anything at or beyond it saturates.
    constexpr double kTwoPow63 = 9223372036854775808.0;
    if (d >= kTwoPow63) return kInt64Max;
    if (d < -kTwoPow63) return kInt64Min;
    return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

bool audience_matches(const json::value* aud, std::string_view expected) {
  if (aud == nullptr) return false;
  if (aud->is_string()) return aud->get_string() == expected;
  if (aud->is_array()) {
    for (const json::value& entry : aud->get_array()) {
      if (entry.is_string() && entry.get_string() == expected) return true;
    }
  }
  return false;
}

struct CompactParts {
  std::string_view header;
  std::string_view payload;
  std::string_view signature;
  std::string_view signing_input;  // "header.payload", what the signature covers
};

// JWS compact serialization: exactly three dot-separated parts (RFC 7515 7.1).
std::optional<CompactParts> split_compact(std::string_view token) {
  const std::size_t first = token.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  const std::size_t second = token.find('.', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  if (token.find('.', second + 1) != std::string_view::npos) return std::nullopt;
  return CompactParts{token.substr(0, first), token.substr(first + 1, second - first - 1),
                      token.substr(second + 1), token.substr(0, second)};
}

std::optional<json::object> decode_json_object(std::string_view part) {
  const std::optional<std::string> text = base64url_decode(part);
  if (!text) return std::nullopt;
  boost::system::error_code ec;
  json::value value = json::parse(*text, ec);
  if (ec || !value.is_object()) return std::nullopt;
  return std::move(value.get_object());
}

// One EVP_DigestVerify with a context of its own, so concurrent calls share
// only the read-only key.
bool digest_verify(EVP_PKEY* key, bool rsa_pkcs1, std::string_view signing_input,
                   std::string_view signature) {
  detail::MdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pkey_ctx = nullptr;
  bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), &pkey_ctx, EVP_sha256(), nullptr, key) == 1 &&
            (!rsa_pkcs1 || EVP_PKEY_CTX_set_rsa_padding(pkey_ctx, RSA_PKCS1_PADDING) > 0);
  ok = ok && EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                              signature.size(),
                              reinterpret_cast<const unsigned char*>(signing_input.data()),
                              signing_input.size()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace

std::optional<JwtAlg> parse_jwt_alg(std::string_view name) {
  if (name == "HS256") return JwtAlg::hs256;
  if (name == "RS256") return JwtAlg::rs256;
  if (name == "ES256") return JwtAlg::es256;
  return std::nullopt;
}

std::string_view jwt_alg_name(JwtAlg alg) {
  switch (alg) {
    case JwtAlg::hs256: return "HS256";
    case JwtAlg::rs256: return "RS256";
    case JwtAlg::es256: return "ES256";
  }
  return "unknown";
}

std::string_view jwt_error_message(JwtError e) {
  switch (e) {
    case JwtError::malformed: return "malformed token";
    case JwtError::wrong_algorithm: return "token algorithm not accepted";
    case JwtError::bad_signature: return "bad token signature";
    case JwtError::expired: return "token expired";
    case JwtError::not_yet_valid: return "token not yet valid";
    case JwtError::missing_exp: return "token has no exp claim";
    case JwtError::bad_issuer: return "token issuer not accepted";
    case JwtError::bad_audience: return "token audience not accepted";
    case JwtError::bad_subject: return "token sub is not a valid user id";
  }
  return "invalid token";
}

void throw_exception_from_error(const JwtError& e, const boost::source_location&) {
  throw std::runtime_error(std::string(jwt_error_message(e)));
}

struct JwtVerifier::Impl {
  JwtConfig config;
  detail::PkeyPtr key;  // RS256/ES256 public key; null for HS256

  bool signature_ok(std::string_view signing_input, std::string_view signature) const {
    switch (config.alg) {
      case JwtAlg::hs256: {
        const std::string expected = detail::hmac_sha256(config.secret, signing_input);
        return signature.size() == expected.size() &&
               CRYPTO_memcmp(signature.data(), expected.data(), expected.size()) == 0;
      }
      case JwtAlg::rs256:
        return digest_verify(key.get(), true, signing_input, signature);
      case JwtAlg::es256: {
        // JOSE carries raw R||S; OpenSSL verifies DER (RFC 7518 3.4).
        const std::optional<std::string> der = detail::ecdsa_raw_to_der(signature);
        return der && digest_verify(key.get(), false, signing_input, *der);
      }
    }
    return false;
  }

  Result check_claims(const json::object& payload, std::int64_t now_unix_ms) const {
    const std::int64_t leeway_ms = config.leeway.count();
    Claims claims;

    const json::value* exp = payload.if_contains("exp");
    const std::optional<std::int64_t> exp_s = exp ? numeric_date(*exp, Rounding::down) : std::nullopt;
    if (!exp_s) return JwtError::missing_exp;
    if (now_unix_ms > saturating_add(saturating_mul(*exp_s, 1000), leeway_ms)) return JwtError::expired;
    claims.exp = *exp_s;

    if (const json::value* nbf = payload.if_contains("nbf")) {
      const std::optional<std::int64_t> nbf_s = numeric_date(*nbf, Rounding::up);
      if (!nbf_s) return JwtError::malformed;
      if (saturating_add(now_unix_ms, leeway_ms) < saturating_mul(*nbf_s, 1000)) {
        return JwtError::not_yet_valid;
      }
      claims.nbf = *nbf_s;
    }

    if (!config.issuer.empty()) {
      const json::value* iss = payload.if_contains("iss");
      if (iss == nullptr || !iss->is_string() || iss->get_string() != config.issuer) {
        return JwtError::bad_issuer;
      }
    }
    if (!config.audience.empty() && !audience_matches(payload.if_contains("aud"), config.audience)) {
      return JwtError::bad_audience;
    }

    const json::value* sub = payload.if_contains("sub");
    if (sub == nullptr || !sub->is_string() || !is_valid_user_id(sub->get_string())) {
      return JwtError::bad_subject;
    }
    claims.sub = sub->get_string();

    // PROTOCOL.md 2: "dev" is only a fallback device id; a non-string is ignored.
    if (const json::value* dev = payload.if_contains("dev"); dev != nullptr && dev->is_string()) {
      claims.dev = std::string(dev->get_string());
    }
    return claims;
  }
};

JwtVerifier::JwtVerifier(JwtConfig config) : impl_(std::make_unique<Impl>()) {
  if (config.leeway < std::chrono::milliseconds::zero()) {
    throw std::invalid_argument("JWT leeway must not be negative");
  }
  const std::string alg_name(jwt_alg_name(config.alg));
  if (config.alg == JwtAlg::hs256) {
    if (config.secret.empty()) throw std::invalid_argument("HS256 needs a non-empty JWT secret");
  } else {
    if (config.public_key_pem.empty()) throw std::invalid_argument(alg_name + " needs a JWT public key");
    impl_->key = detail::load_public_key_pem(config.public_key_pem);
    if (const std::string why = detail::key_mismatch(config.alg, impl_->key.get()); !why.empty()) {
      throw std::invalid_argument("JWT public key: " + why);
    }
  }
  impl_->config = std::move(config);
}

JwtVerifier::~JwtVerifier() = default;
JwtVerifier::JwtVerifier(JwtVerifier&&) noexcept = default;
JwtVerifier& JwtVerifier::operator=(JwtVerifier&&) noexcept = default;

const JwtConfig& JwtVerifier::config() const { return impl_->config; }

Result JwtVerifier::verify(std::string_view token, std::int64_t now_unix_ms) const {
  if (token.size() > kMaxTokenBytes) return JwtError::malformed;
  const std::optional<CompactParts> parts = split_compact(token);
  if (!parts) return JwtError::malformed;

  const std::optional<json::object> header = decode_json_object(parts->header);
  if (!header) return JwtError::malformed;
  // PROTOCOL.md 2: the algorithm is fixed by configuration, never by the
  // token. An exact match refuses "none" and HS256-with-the-public-key alike.
  const json::value* alg = header->if_contains("alg");
  if (alg == nullptr || !alg->is_string() || alg->get_string() != jwt_alg_name(impl_->config.alg)) {
    return JwtError::wrong_algorithm;
  }
  // RFC 7515 4.1.11: extensions listed in "crit" must be understood; we understand none.
  if (header->contains("crit")) return JwtError::malformed;

  const std::optional<std::string> signature = base64url_decode(parts->signature);
  if (!signature) return JwtError::malformed;
  if (!impl_->signature_ok(parts->signing_input, *signature)) return JwtError::bad_signature;

  // The payload is parsed only once its signature is known to be good.
  const std::optional<json::object> payload = decode_json_object(parts->payload);
  if (!payload) return JwtError::malformed;
  return impl_->check_claims(*payload, now_unix_ms);
}

}  // namespace herald::auth
