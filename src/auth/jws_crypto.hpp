#pragma once
// OpenSSL 3 pieces shared by JWT signing and verification (RFC 7518 section 3):
// owning handles, HMAC-SHA256, the ES256 signature form conversion and key
// checks. Internal to the auth module; every function is safe to call from
// any thread and leaves this thread's OpenSSL error queue empty.
#include "auth/jwt.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace herald::auth::detail {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

// Size of an ES256 signature in JOSE form: R and S, 32 bytes each (RFC 7518 3.4).
inline constexpr std::size_t kEs256SignatureBytes = 64;

// HMAC-SHA256 of data under key (32 bytes). Throws std::runtime_error if OpenSSL fails.
std::string hmac_sha256(std::string_view key, std::string_view data);

// JOSE raw R||S (exactly 64 bytes) to a DER ECDSA-Sig-Value, as EVP_DigestVerify
// wants it; nullopt on a wrong length.
std::optional<std::string> ecdsa_raw_to_der(std::string_view raw);
// DER ECDSA-Sig-Value (from EVP_DigestSign) to JOSE raw R||S; nullopt on bad DER.
std::optional<std::string> ecdsa_der_to_raw(std::string_view der);

// Parses a public key PEM: SubjectPublicKeyInfo ("PUBLIC KEY") or PKCS#1
// ("RSA PUBLIC KEY"). Throws std::invalid_argument with the reason.
PkeyPtr load_public_key_pem(std::string_view pem);
// Parses an unencrypted private key PEM. Throws std::invalid_argument with the reason.
PkeyPtr load_private_key_pem(std::string_view pem);

// Empty when key can serve alg (RSA of at least 2048 bits for RS256, EC P-256
// for ES256); otherwise why not.
std::string key_mismatch(JwtAlg alg, EVP_PKEY* key);

// Text of the oldest error on this thread's OpenSSL queue; clears the queue.
std::string take_openssl_error();

}  // namespace herald::auth::detail
