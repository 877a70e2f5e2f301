// JWT signing for `herald token` and tests (RFC 7515 compact serialization, RFC 7518 3).
#include "auth/jwt.hpp"

#include "auth/jws_crypto.hpp"

#include <openssl/rsa.h>

#include <stdexcept>

namespace herald::auth {
namespace {

namespace json = boost::json;

// "base64url(header).base64url(claims)": what the signature covers.
std::string signing_input(JwtAlg alg, const json::object& claims) {
  json::object header;
  header["alg"] = jwt_alg_name(alg);
  header["typ"] = "JWT";
  return base64url_encode(json::serialize(header)) + "." + base64url_encode(json::serialize(claims));
}

std::string digest_sign(JwtAlg alg, EVP_PKEY* key, std::string_view input) {
  detail::MdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pkey_ctx = nullptr;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  std::size_t length = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), &pkey_ctx, EVP_sha256(), nullptr, key) != 1 ||
      (alg == JwtAlg::rs256 && EVP_PKEY_CTX_set_rsa_padding(pkey_ctx, RSA_PKCS1_PADDING) <= 0) ||
      EVP_DigestSign(ctx.get(), nullptr, &length, data, input.size()) != 1) {
    throw std::runtime_error("JWT signing failed: " + detail::take_openssl_error());
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, data,
                     input.size()) != 1) {
    throw std::runtime_error("JWT signing failed: " + detail::take_openssl_error());
  }
  signature.resize(length);
  return signature;
}

}  // namespace

std::string sign_hs256(const json::object& claims, std::string_view secret) {
  if (secret.empty()) throw std::invalid_argument("HS256 needs a non-empty secret");
  std::string token = signing_input(JwtAlg::hs256, claims);
  const std::string mac = detail::hmac_sha256(secret, token);
  return token + "." + base64url_encode(mac);
}

std::string sign_with_private_key(JwtAlg alg, const json::object& claims,
                                  std::string_view private_key_pem) {
  if (alg == JwtAlg::hs256) throw std::invalid_argument("HS256 tokens are signed with a secret (sign_hs256)");
  const detail::PkeyPtr key = detail::load_private_key_pem(private_key_pem);
  if (const std::string why = detail::key_mismatch(alg, key.get()); !why.empty()) {
    throw std::invalid_argument("JWT private key: " + why);
  }
  std::string token = signing_input(alg, claims);
  std::string signature = digest_sign(alg, key.get(), token);
  if (alg == JwtAlg::es256) {
    // OpenSSL signs DER; JOSE carries raw R||S (RFC 7518 3.4).
    std::optional<std::string> raw = detail::ecdsa_der_to_raw(signature);
    if (!raw) throw std::runtime_error("JWT signing failed: unexpected ECDSA signature encoding");
    signature = std::move(*raw);
  }
  return token + "." + base64url_encode(signature);
}

}  // namespace herald::auth
