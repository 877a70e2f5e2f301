#include "auth/jws_crypto.hpp"

#include <openssl/bn.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <climits>
#include <stdexcept>

namespace herald::auth::detail {
namespace {

struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
struct BignumFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct DecoderCtxFree {
  void operator()(OSSL_DECODER_CTX* p) const { OSSL_DECODER_CTX_free(p); }
};
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, EcdsaSigFree>;
using BignumPtr = std::unique_ptr<BIGNUM, BignumFree>;
using DecoderCtxPtr = std::unique_ptr<OSSL_DECODER_CTX, DecoderCtxFree>;

// RFC 7518 3.3: "A key of size 2048 bits or larger MUST be used".
constexpr int kMinRsaBits = 2048;
constexpr std::size_t kEs256ScalarBytes = kEs256SignatureBytes / 2;

// Keys are configuration, never typed at a prompt: an encrypted PEM fails
// instead of OpenSSL's default callback reading the terminal.
int refuse_passphrase(char*, int, int, void*) { return -1; }

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

BioPtr memory_bio(std::string_view pem, std::string_view what) {
  if (pem.size() > static_cast<std::size_t>(INT_MAX)) {
    throw std::invalid_argument(std::string(what) + ": PEM text too large");
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) throw std::runtime_error(std::string(what) + ": " + take_openssl_error());
  return bio;
}

// PKCS#1 "RSA PUBLIC KEY", which PEM_read_bio_PUBKEY does not read.
PkeyPtr decode_pkcs1_rsa_public_key(std::string_view pem) {
  EVP_PKEY* raw = nullptr;
  DecoderCtxPtr ctx(OSSL_DECODER_CTX_new_for_pkey(&raw, "PEM", "type-specific", "RSA",
                                                  EVP_PKEY_PUBLIC_KEY, nullptr, nullptr));
  if (!ctx) return nullptr;
  const unsigned char* data = bytes_of(pem);
  std::size_t len = pem.size();
  if (OSSL_DECODER_from_data(ctx.get(), &data, &len) != 1) {
    EVP_PKEY_free(raw);
    return nullptr;
  }
  return PkeyPtr(raw);
}

[[noreturn]] void throw_unreadable_key(std::string_view pem, std::string_view what,
                                       std::string_view expected) {
  const std::string openssl_reason = take_openssl_error();
  std::string message = std::string(what) + ": ";
  if (expected == "public" && pem.find("PRIVATE KEY-----") != std::string_view::npos) {
    message += "expected a PEM public key (BEGIN PUBLIC KEY) but got a private key";
  } else if (pem.find("BEGIN CERTIFICATE") != std::string_view::npos) {
    message += "expected a PEM " + std::string(expected) +
               " key but got a certificate (openssl x509 -pubkey -noout extracts its key)";
  } else {
    message += "not a readable PEM " + std::string(expected) + " key (" + openssl_reason + ")";
  }
  throw std::invalid_argument(message);
}

}  // namespace

std::string hmac_sha256(std::string_view key, std::string_view data) {
  if (key.size() > static_cast<std::size_t>(INT_MAX)) throw std::invalid_argument("HMAC key too large");
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), bytes_of(data), data.size(), mac,
           &mac_len) == nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed: " + take_openssl_error());
  }
  return std::string(reinterpret_cast<const char*>(mac), mac_len);
}

std::optional<std::string> ecdsa_raw_to_der(std::string_view raw) {
  if (raw.size() != kEs256SignatureBytes) return std::nullopt;
  BignumPtr r(BN_bin2bn(bytes_of(raw), static_cast<int>(kEs256ScalarBytes), nullptr));
  BignumPtr s(BN_bin2bn(bytes_of(raw) + kEs256ScalarBytes, static_cast<int>(kEs256ScalarBytes), nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    throw std::runtime_error("ECDSA signature conversion failed: " + take_openssl_error());
  }
  // ECDSA_SIG_set0 took ownership of r and s.
  (void)r.release();
  (void)s.release();
  const int der_len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (der_len <= 0) throw std::runtime_error("ECDSA signature encoding failed: " + take_openssl_error());
  std::string der(static_cast<std::size_t>(der_len), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &out) != der_len) {
    throw std::runtime_error("ECDSA signature encoding failed: " + take_openssl_error());
  }
  return der;
}

std::optional<std::string> ecdsa_der_to_raw(std::string_view der) {
  const unsigned char* in = bytes_of(der);
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &in, static_cast<long>(der.size())));
  if (!sig) {
    ERR_clear_error();
    return std::nullopt;
  }
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string raw(kEs256SignatureBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(r, out, static_cast<int>(kEs256ScalarBytes)) < 0 ||
      BN_bn2binpad(s, out + kEs256ScalarBytes, static_cast<int>(kEs256ScalarBytes)) < 0) {
    ERR_clear_error();
    return std::nullopt;
  }
  return raw;
}

PkeyPtr load_public_key_pem(std::string_view pem) {
  constexpr std::string_view what = "JWT public key";
  BioPtr bio = memory_bio(pem, what);
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, refuse_passphrase, nullptr));
  if (!key && pem.find("-----BEGIN RSA PUBLIC KEY-----") != std::string_view::npos) {
    ERR_clear_error();
    key = decode_pkcs1_rsa_public_key(pem);
  }
  if (!key) throw_unreadable_key(pem, what, "public");
  ERR_clear_error();
  return key;
}

PkeyPtr load_private_key_pem(std::string_view pem) {
  constexpr std::string_view what = "JWT private key";
  BioPtr bio = memory_bio(pem, what);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, nullptr));
  if (!key) throw_unreadable_key(pem, what, "private (unencrypted)");
  ERR_clear_error();
  return key;
}

std::string key_mismatch(JwtAlg alg, EVP_PKEY* key) {
  const std::string alg_name(jwt_alg_name(alg));
  switch (alg) {
    case JwtAlg::hs256:
      return "HS256 uses a shared secret, not a key pair";
    case JwtAlg::rs256: {
      // EVP_PKEY_RSA only: an RSA-PSS key would refuse PKCS#1 v1.5 padding.
      if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) return alg_name + " needs an RSA key";
      const int bits = EVP_PKEY_get_bits(key);
      if (bits < kMinRsaBits) {
        return alg_name + " needs an RSA key of at least " + std::to_string(kMinRsaBits) +
               " bits, got " + std::to_string(bits);
      }
      return {};
    }
    case JwtAlg::es256: {
      if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return alg_name + " needs an EC P-256 key";
      char group[64] = {};
      std::size_t group_len = 0;
      if (EVP_PKEY_get_group_name(key, group, sizeof(group), &group_len) != 1) {
        ERR_clear_error();
        return alg_name + " needs an EC P-256 key (curve unknown)";
      }
      const std::string_view name(group, group_len);
      if (name != "prime256v1" && name != "P-256") {
        return alg_name + " needs an EC P-256 key, got curve " + std::string(name);
      }
      return {};
    }
  }
  return "unknown algorithm";
}

std::string take_openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

}  // namespace herald::auth::detail
