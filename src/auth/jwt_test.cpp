#include "auth/jwt.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <atomic>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace herald::auth {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;

constexpr std::int64_t kNowMs = 1'700'000'000'000;
constexpr std::int64_t kNowS = kNowMs / 1000;
const std::string kSecret = "test-secret-0123456789abcdef-0123";

// ---------------------------------------------------------------------------
// Helpers: tokens and keys built independently of the code under test where
// it matters (HMAC and key generation straight from OpenSSL).
// ---------------------------------------------------------------------------

json::object valid_claims() { return {{"sub", "u1"}, {"exp", kNowS + 3600}}; }

JwtConfig hs256_config() {
  JwtConfig config;
  config.secret = kSecret;
  return config;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &mac_len);
  return std::string(reinterpret_cast<const char*>(mac), mac_len);
}

// Signs already-encoded parts, so tests can build tokens no honest signer would.
std::string hs256_token_from_parts(const std::string& header_b64, const std::string& payload_b64,
                                   std::string_view secret = kSecret) {
  const std::string input = header_b64 + "." + payload_b64;
  return input + "." + base64url_encode(hmac_sha256(secret, input));
}

std::string hs256_token_from_text(std::string_view header_json, std::string_view payload_json) {
  return hs256_token_from_parts(base64url_encode(header_json), base64url_encode(payload_json));
}

constexpr std::string_view kHs256Header = R"({"alg":"HS256","typ":"JWT"})";

struct Parts {
  std::string header, payload, signature;
};

Parts split(const std::string& token) {
  const auto first = token.find('.');
  const auto second = token.find('.', first + 1);
  return {token.substr(0, first), token.substr(first + 1, second - first - 1), token.substr(second + 1)};
}

std::string join(const Parts& p) { return p.header + "." + p.payload + "." + p.signature; }

// Changes the first signature byte; the first character carries six full bits.
std::string with_tampered_signature(const std::string& token) {
  Parts parts = split(token);
  parts.signature[0] = parts.signature[0] == 'A' ? 'B' : 'A';
  return join(parts);
}

struct KeyPair {
  std::string public_pem;
  std::string private_pem;
  std::string pkcs1_public_pem;  // "RSA PUBLIC KEY"; RSA only
};

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(len));
}

KeyPair pem_pair(EVP_PKEY* key, bool rsa) {
  KeyPair pair;
  BIO* pub = BIO_new(BIO_s_mem());
  BIO* priv = BIO_new(BIO_s_mem());
  EXPECT_EQ(PEM_write_bio_PUBKEY(pub, key), 1);
  EXPECT_EQ(PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  pair.public_pem = bio_text(pub);
  pair.private_pem = bio_text(priv);
  BIO_free(pub);
  BIO_free(priv);
  if (rsa) {
    unsigned char* data = nullptr;
    std::size_t len = 0;
    OSSL_ENCODER_CTX* ctx =
        OSSL_ENCODER_CTX_new_for_pkey(key, EVP_PKEY_PUBLIC_KEY, "PEM", "type-specific", nullptr);
    EXPECT_EQ(OSSL_ENCODER_to_data(ctx, &data, &len), 1);
    pair.pkcs1_public_pem.assign(reinterpret_cast<const char*>(data), len);
    OPENSSL_free(data);
    OSSL_ENCODER_CTX_free(ctx);
  }
  EVP_PKEY_free(key);
  return pair;
}

KeyPair make_rsa_key() { return pem_pair(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048}), true); }
KeyPair make_ec_key() { return pem_pair(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), false); }

// Generated once per process: RSA key generation is slow.
const KeyPair& rsa_key() {
  static const KeyPair key = make_rsa_key();
  return key;
}
const KeyPair& other_rsa_key() {
  static const KeyPair key = make_rsa_key();
  return key;
}
const KeyPair& ec_key() {
  static const KeyPair key = make_ec_key();
  return key;
}
const KeyPair& other_ec_key() {
  static const KeyPair key = make_ec_key();
  return key;
}

JwtConfig key_config(JwtAlg alg, const std::string& public_pem) {
  JwtConfig config;
  config.alg = alg;
  config.public_key_pem = public_pem;
  return config;
}

JwtError error_of(const JwtVerifier& verifier, const std::string& token, std::int64_t now_ms = kNowMs) {
  const auto result = verifier.verify(token, now_ms);
  EXPECT_FALSE(result.has_value()) << "token was accepted: " << token;
  return result.has_value() ? JwtError{} : result.error();
}

std::string constructor_error(JwtConfig config) {
  try {
    JwtVerifier verifier(std::move(config));
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  ADD_FAILURE() << "constructor did not throw";
  return {};
}

// ---------------------------------------------------------------------------
// Algorithms
// ---------------------------------------------------------------------------

TEST(JwtAlg, ParsesExactNamesOnly) {
  EXPECT_EQ(parse_jwt_alg("HS256"), JwtAlg::hs256);
  EXPECT_EQ(parse_jwt_alg("RS256"), JwtAlg::rs256);
  EXPECT_EQ(parse_jwt_alg("ES256"), JwtAlg::es256);
  EXPECT_EQ(parse_jwt_alg("hs256"), std::nullopt);
  EXPECT_EQ(parse_jwt_alg("none"), std::nullopt);
  EXPECT_EQ(parse_jwt_alg(""), std::nullopt);
  for (const JwtAlg alg : {JwtAlg::hs256, JwtAlg::rs256, JwtAlg::es256}) {
    EXPECT_EQ(parse_jwt_alg(jwt_alg_name(alg)), alg);
  }
}

TEST(JwtError, EveryErrorHasAMessage) {
  for (const JwtError e : {JwtError::malformed, JwtError::wrong_algorithm, JwtError::bad_signature,
                           JwtError::expired, JwtError::not_yet_valid, JwtError::missing_exp,
                           JwtError::bad_issuer, JwtError::bad_audience, JwtError::bad_subject}) {
    EXPECT_FALSE(jwt_error_message(e).empty());
  }
  EXPECT_EQ(jwt_error_message(JwtError::expired), "token expired");
}

// ---------------------------------------------------------------------------
// HS256 and the algorithm rule (PROTOCOL.md 2)
// ---------------------------------------------------------------------------

TEST(JwtVerifier, AcceptsValidHs256TokenAndReturnsItsClaims) {
  const JwtVerifier verifier(hs256_config());
  json::object claims = valid_claims();
  claims["dev"] = "phone";
  claims["nbf"] = kNowS - 10;
  const auto result = verifier.verify(sign_hs256(claims, kSecret), kNowMs);
  ASSERT_TRUE(result.has_value()) << jwt_error_message(result.error());
  EXPECT_EQ(result->sub, "u1");
  EXPECT_EQ(result->dev, "phone");
  EXPECT_EQ(result->exp, kNowS + 3600);
  EXPECT_EQ(result->nbf, kNowS - 10);
}

TEST(JwtVerifier, AcceptsTokenSignedByAnIndependentHmac) {
  const JwtVerifier verifier(hs256_config());
  const auto result = verifier.verify(
      hs256_token_from_text(kHs256Header, json::serialize(valid_claims())), kNowMs);
  EXPECT_TRUE(result.has_value());
}

TEST(JwtVerifier, IgnoresDevClaimThatIsNotAString) {
  const JwtVerifier verifier(hs256_config());
  json::object claims = valid_claims();
  claims["dev"] = 7;
  const auto result = verifier.verify(sign_hs256(claims, kSecret), kNowMs);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->dev, std::nullopt);
  EXPECT_EQ(result->nbf, std::nullopt);
}

TEST(JwtVerifier, RefusesAlgNone) {
  const JwtVerifier verifier(hs256_config());
  const std::string payload = base64url_encode(json::serialize(valid_claims()));
  for (const std::string_view header :
       {R"({"alg":"none","typ":"JWT"})", R"({"alg":"None"})", R"({"alg":""})", R"({"typ":"JWT"})"}) {
    EXPECT_EQ(error_of(verifier, base64url_encode(header) + "." + payload + "."), JwtError::wrong_algorithm)
        << header;
  }
}

TEST(JwtVerifier, RefusesAlgNameInAnotherCase) {
  const JwtVerifier verifier(hs256_config());
  const std::string token =
      hs256_token_from_text(R"({"alg":"hs256"})", json::serialize(valid_claims()));
  EXPECT_EQ(error_of(verifier, token), JwtError::wrong_algorithm);
}

TEST(JwtVerifier, RefusesHs256TokenKeyedWithThePublicKeyWhenConfiguredForRs256) {
  // The classic key confusion: an attacker HMACs with the (public) RSA key.
  const std::string forged = sign_hs256(valid_claims(), rsa_key().public_pem);
  JwtConfig naive = hs256_config();
  naive.secret = rsa_key().public_pem;
  ASSERT_TRUE(JwtVerifier(naive).verify(forged, kNowMs).has_value()) << "forgery is a real HS256 token";

  const JwtVerifier verifier(key_config(JwtAlg::rs256, rsa_key().public_pem));
  EXPECT_EQ(error_of(verifier, forged), JwtError::wrong_algorithm);
}

TEST(JwtVerifier, RefusesRs256TokenWhenConfiguredForEs256) {
  const JwtVerifier verifier(key_config(JwtAlg::es256, ec_key().public_pem));
  const std::string token = sign_with_private_key(JwtAlg::rs256, valid_claims(), rsa_key().private_pem);
  EXPECT_EQ(error_of(verifier, token), JwtError::wrong_algorithm);
}

TEST(JwtVerifier, RefusesTokenSignedWithAnotherSecret) {
  const JwtVerifier verifier(hs256_config());
  EXPECT_EQ(error_of(verifier, sign_hs256(valid_claims(), "another-secret")), JwtError::bad_signature);
}

TEST(JwtVerifier, RefusesTamperedPayload) {
  const JwtVerifier verifier(hs256_config());
  Parts parts = split(sign_hs256(valid_claims(), kSecret));
  parts.payload = base64url_encode(json::serialize(json::object{{"sub", "admin"}, {"exp", kNowS + 3600}}));
  EXPECT_EQ(error_of(verifier, join(parts)), JwtError::bad_signature);
}

TEST(JwtVerifier, RefusesTamperedSignature) {
  const JwtVerifier verifier(hs256_config());
  EXPECT_EQ(error_of(verifier, with_tampered_signature(sign_hs256(valid_claims(), kSecret))),
            JwtError::bad_signature);
}

TEST(JwtVerifier, RefusesTruncatedSignature) {
  const JwtVerifier verifier(hs256_config());
  Parts parts = split(sign_hs256(valid_claims(), kSecret));
  parts.signature.resize(40);
  EXPECT_EQ(error_of(verifier, join(parts)), JwtError::bad_signature);
  parts.signature.clear();
  EXPECT_EQ(error_of(verifier, join(parts)), JwtError::bad_signature);
}

TEST(JwtVerifier, RefusesCriticalHeaderExtensions) {
  const JwtVerifier verifier(hs256_config());
  const std::string token = hs256_token_from_text(R"({"alg":"HS256","crit":["b64"],"b64":false})",
                                                  json::serialize(valid_claims()));
  EXPECT_EQ(error_of(verifier, token), JwtError::malformed);
}

// ---------------------------------------------------------------------------
// Malformed tokens
// ---------------------------------------------------------------------------

TEST(JwtVerifier, RefusesTokensWithoutThreeParts) {
  const JwtVerifier verifier(hs256_config());
  const std::string token = sign_hs256(valid_claims(), kSecret);
  const Parts parts = split(token);
  EXPECT_EQ(error_of(verifier, ""), JwtError::malformed);
  EXPECT_EQ(error_of(verifier, parts.header), JwtError::malformed);
  EXPECT_EQ(error_of(verifier, parts.header + "." + parts.payload), JwtError::malformed);
  EXPECT_EQ(error_of(verifier, token + "." + parts.signature), JwtError::malformed);
  EXPECT_EQ(error_of(verifier, ".."), JwtError::malformed);
}

TEST(JwtVerifier, RefusesPartsThatAreNotBase64url) {
  const JwtVerifier verifier(hs256_config());
  const Parts good = split(sign_hs256(valid_claims(), kSecret));
  EXPECT_EQ(error_of(verifier, "!!!!." + good.payload + "." + good.signature), JwtError::malformed);
  EXPECT_EQ(error_of(verifier, hs256_token_from_parts(good.header, "e30+/w==")), JwtError::malformed);
  EXPECT_EQ(error_of(verifier, good.header + "." + good.payload + "." + good.signature + "="),
            JwtError::malformed);
}

TEST(JwtVerifier, RefusesHeaderOrPayloadThatIsNotAJsonObject) {
  const JwtVerifier verifier(hs256_config());
  const std::string claims = json::serialize(valid_claims());
  EXPECT_EQ(error_of(verifier, hs256_token_from_text(kHs256Header, "not json")), JwtError::malformed);
  EXPECT_EQ(error_of(verifier, hs256_token_from_text(kHs256Header, "[" + claims + "]")), JwtError::malformed);
  EXPECT_EQ(error_of(verifier, hs256_token_from_text(kHs256Header, R"("u1")")), JwtError::malformed);
  EXPECT_EQ(error_of(verifier, hs256_token_from_text(kHs256Header, claims + "{")), JwtError::malformed);
  EXPECT_EQ(error_of(verifier, hs256_token_from_text("not json", claims)), JwtError::malformed);
  EXPECT_EQ(error_of(verifier, hs256_token_from_text(R"(["HS256"])", claims)), JwtError::malformed);
}

TEST(JwtVerifier, RefusesOversizedToken) {
  const JwtVerifier verifier(hs256_config());
  json::object claims = valid_claims();
  claims["pad"] = std::string(20000, 'x');
  EXPECT_EQ(error_of(verifier, sign_hs256(claims, kSecret)), JwtError::malformed);
}

// ---------------------------------------------------------------------------
// exp, nbf and leeway (PROTOCOL.md 2, 9: leeway 30 s by default)
// ---------------------------------------------------------------------------

TEST(JwtVerifier, RefusesTokenWithoutExp) {
  const JwtVerifier verifier(hs256_config());
  EXPECT_EQ(error_of(verifier, sign_hs256({{"sub", "u1"}}, kSecret)), JwtError::missing_exp);
  EXPECT_EQ(error_of(verifier, sign_hs256({{"sub", "u1"}, {"exp", "1999999999"}}, kSecret)),
            JwtError::missing_exp);
  EXPECT_EQ(error_of(verifier, sign_hs256({{"sub", "u1"}, {"exp", nullptr}}, kSecret)), JwtError::missing_exp);
}

TEST(JwtVerifier, RefusesExpiredToken) {
  const JwtVerifier verifier(hs256_config());
  EXPECT_EQ(error_of(verifier, sign_hs256({{"sub", "u1"}, {"exp", kNowS - 31}}, kSecret)), JwtError::expired);
  EXPECT_EQ(error_of(verifier, sign_hs256({{"sub", "u1"}, {"exp", -5}}, kSecret)), JwtError::expired);
}

TEST(JwtVerifier, AcceptsExpiredTokenWithinLeeway) {
  const JwtVerifier verifier(hs256_config());
  EXPECT_TRUE(verifier.verify(sign_hs256({{"sub", "u1"}, {"exp", kNowS - 29}}, kSecret), kNowMs).has_value());
}

TEST(JwtVerifier, ExpiresOneMillisecondAfterExpPlusLeeway) {
  const JwtVerifier verifier(hs256_config());
  const std::string token = sign_hs256({{"sub", "u1"}, {"exp", kNowS - 30}}, kSecret);
  EXPECT_TRUE(verifier.verify(token, kNowMs).has_value());
  EXPECT_EQ(error_of(verifier, token, kNowMs + 1), JwtError::expired);
}

TEST(JwtVerifier, AppliesConfiguredLeeway) {
  JwtConfig config = hs256_config();
  config.leeway = std::chrono::milliseconds(0);
  const JwtVerifier verifier(config);
  const std::string token = sign_hs256({{"sub", "u1"}, {"exp", kNowS}}, kSecret);
  EXPECT_TRUE(verifier.verify(token, kNowMs).has_value());
  EXPECT_EQ(error_of(verifier, token, kNowMs + 1), JwtError::expired);
}

TEST(JwtVerifier, RefusesTokenWhoseNbfIsInTheFuture) {
  const JwtVerifier verifier(hs256_config());
  json::object claims = valid_claims();
  claims["nbf"] = kNowS + 31;
  EXPECT_EQ(error_of(verifier, sign_hs256(claims, kSecret)), JwtError::not_yet_valid);
}

TEST(JwtVerifier, AcceptsNbfInTheFutureWithinLeeway) {
  const JwtVerifier verifier(hs256_config());
  json::object claims = valid_claims();
  claims["nbf"] = kNowS + 30;
  const std::string token = sign_hs256(claims, kSecret);
  EXPECT_TRUE(verifier.verify(token, kNowMs).has_value());
  EXPECT_EQ(error_of(verifier, token, kNowMs - 1), JwtError::not_yet_valid);
}

TEST(JwtVerifier, RefusesNbfThatIsNotANumber) {
  const JwtVerifier verifier(hs256_config());
  json::object claims = valid_claims();
  claims["nbf"] = "soon";
  EXPECT_EQ(error_of(verifier, sign_hs256(claims, kSecret)), JwtError::malformed);
}

TEST(JwtVerifier, RoundsFractionalDatesTowardsTheNarrowerWindow) {
  JwtConfig config = hs256_config();
  config.leeway = std::chrono::milliseconds(0);
  const JwtVerifier verifier(config);
  const auto result = verifier.verify(
      sign_hs256({{"sub", "u1"}, {"exp", kNowS + 10.9}, {"nbf", kNowS - 10.9}}, kSecret), kNowMs);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->exp, kNowS + 10);
  EXPECT_EQ(result->nbf, kNowS - 10);
}

TEST(JwtVerifier, SaturatesHugeDatesInsteadOfOverflowing) {
  const JwtVerifier verifier(hs256_config());
  EXPECT_TRUE(verifier.verify(sign_hs256({{"sub", "u1"}, {"exp", 1e300}}, kSecret), kNowMs).has_value());
  EXPECT_TRUE(verifier.verify(sign_hs256({{"sub", "u1"}, {"exp", UINT64_MAX}}, kSecret), kNowMs).has_value());
  EXPECT_TRUE(verifier.verify(sign_hs256({{"sub", "u1"}, {"exp", INT64_MAX}}, kSecret), kNowMs).has_value());
  EXPECT_EQ(error_of(verifier, sign_hs256({{"sub", "u1"}, {"exp", -1e300}}, kSecret)), JwtError::expired);
  EXPECT_EQ(error_of(verifier, sign_hs256({{"sub", "u1"}, {"exp", INT64_MIN}}, kSecret)), JwtError::expired);
  json::object claims = valid_claims();
  claims["nbf"] = INT64_MAX;
  EXPECT_EQ(error_of(verifier, sign_hs256(claims, kSecret)), JwtError::not_yet_valid);
}

// ---------------------------------------------------------------------------
// iss and aud (PROTOCOL.md 2: when configured)
// ---------------------------------------------------------------------------

TEST(JwtVerifier, RefusesMismatchedOrMissingIssuerAndAcceptsMatchingOne) {
  JwtConfig config = hs256_config();
  config.issuer = "https://auth.example";
  const JwtVerifier verifier(config);
  json::object claims = valid_claims();
  EXPECT_EQ(error_of(verifier, sign_hs256(claims, kSecret)), JwtError::bad_issuer);
  claims["iss"] = "https://evil.example";
  EXPECT_EQ(error_of(verifier, sign_hs256(claims, kSecret)), JwtError::bad_issuer);
  claims["iss"] = json::array{"https://auth.example"};
  EXPECT_EQ(error_of(verifier, sign_hs256(claims, kSecret)), JwtError::bad_issuer);
  claims["iss"] = "https://auth.example";
  EXPECT_TRUE(verifier.verify(sign_hs256(claims, kSecret), kNowMs).has_value());
}

TEST(JwtVerifier, RefusesMismatchedOrMissingAudience) {
  JwtConfig config = hs256_config();
  config.audience = "herald";
  const JwtVerifier verifier(config);
  json::object claims = valid_claims();
  EXPECT_EQ(error_of(verifier, sign_hs256(claims, kSecret)), JwtError::bad_audience);
  claims["aud"] = "other";
  EXPECT_EQ(error_of(verifier, sign_hs256(claims, kSecret)), JwtError::bad_audience);
  claims["aud"] = json::array{"a", "b"};
  EXPECT_EQ(error_of(verifier, sign_hs256(claims, kSecret)), JwtError::bad_audience);
  claims["aud"] = json::array{};
  EXPECT_EQ(error_of(verifier, sign_hs256(claims, kSecret)), JwtError::bad_audience);
}

TEST(JwtVerifier, AcceptsAudienceAsStringOrInArray) {
  JwtConfig config = hs256_config();
  config.audience = "herald";
  const JwtVerifier verifier(config);
  json::object claims = valid_claims();
  claims["aud"] = "herald";
  EXPECT_TRUE(verifier.verify(sign_hs256(claims, kSecret), kNowMs).has_value());
  claims["aud"] = json::array{"other", 3, "herald"};
  EXPECT_TRUE(verifier.verify(sign_hs256(claims, kSecret), kNowMs).has_value());
}

TEST(JwtVerifier, IgnoresIssAndAudWhenNotConfigured) {
  const JwtVerifier verifier(hs256_config());
  json::object claims = valid_claims();
  claims["iss"] = 1;
  claims["aud"] = json::array{"x"};
  EXPECT_TRUE(verifier.verify(sign_hs256(claims, kSecret), kNowMs).has_value());
}

// ---------------------------------------------------------------------------
// sub (PROTOCOL.md 2, 10: 1..128 bytes of UTF-8, no control characters)
// ---------------------------------------------------------------------------

TEST(JwtVerifier, RefusesBadSubjects) {
  const JwtVerifier verifier(hs256_config());
  // U+0085 and U+009F: the C1 controls are control characters too (Unicode category Cc).
  const json::array bad = {"",   std::string(129, 'a'), "u\x01", "u\n", "u\x7f", "a\xc2\x85" "b", "\xc2\x9f",
                           42,   nullptr,                json::array{"u1"}};
  for (const json::value& sub : bad) {
    json::object claims = valid_claims();
    claims["sub"] = sub;
    EXPECT_EQ(error_of(verifier, sign_hs256(claims, kSecret)), JwtError::bad_subject) << sub;
  }
  json::object claims = valid_claims();
  claims.erase("sub");
  EXPECT_EQ(error_of(verifier, sign_hs256(claims, kSecret)), JwtError::bad_subject);
}

TEST(JwtVerifier, RefusesSubjectWithLoneSurrogateEscape) {
  // Boost.JSON 1.81 refuses the escape itself (malformed); were it ever to
  // decode it, the subject check must still refuse the result.
  const JwtVerifier verifier(hs256_config());
  const std::string payload = R"({"sub":"u\ud800","exp":)" + std::to_string(kNowS + 3600) + "}";
  EXPECT_FALSE(verifier.verify(hs256_token_from_text(kHs256Header, payload), kNowMs).has_value());
}

TEST(JwtVerifier, AcceptsSubjectOf128BytesOfUtf8) {
  const JwtVerifier verifier(hs256_config());
  // U+00A0 (no-break space) follows the C1 block and is not a control character.
  for (const std::string& sub :
       {std::string(128, 'a'), std::string("用户-ü-👤"), std::string("a b:c/d"), std::string("a\xc2\xa0" "b")}) {
    json::object claims = valid_claims();
    claims["sub"] = sub;
    const auto result = verifier.verify(sign_hs256(claims, kSecret), kNowMs);
    ASSERT_TRUE(result.has_value()) << sub;
    EXPECT_EQ(result->sub, sub);
  }
}

// ---------------------------------------------------------------------------
// RS256 and ES256
// ---------------------------------------------------------------------------

TEST(JwtVerifier, AcceptsValidRs256Token) {
  const JwtVerifier verifier(key_config(JwtAlg::rs256, rsa_key().public_pem));
  const std::string token = sign_with_private_key(JwtAlg::rs256, valid_claims(), rsa_key().private_pem);
  const auto result = verifier.verify(token, kNowMs);
  ASSERT_TRUE(result.has_value()) << jwt_error_message(result.error());
  EXPECT_EQ(result->sub, "u1");
}

TEST(JwtVerifier, AcceptsRsaPublicKeyInPkcs1Pem) {
  ASSERT_THAT(rsa_key().pkcs1_public_pem, HasSubstr("BEGIN RSA PUBLIC KEY"));
  const JwtVerifier verifier(key_config(JwtAlg::rs256, rsa_key().pkcs1_public_pem));
  const std::string token = sign_with_private_key(JwtAlg::rs256, valid_claims(), rsa_key().private_pem);
  EXPECT_TRUE(verifier.verify(token, kNowMs).has_value());
}

TEST(JwtVerifier, RefusesRs256TokenSignedByAnotherKeyOrTampered) {
  const JwtVerifier verifier(key_config(JwtAlg::rs256, rsa_key().public_pem));
  const std::string foreign = sign_with_private_key(JwtAlg::rs256, valid_claims(), other_rsa_key().private_pem);
  EXPECT_EQ(error_of(verifier, foreign), JwtError::bad_signature);
  const std::string token = sign_with_private_key(JwtAlg::rs256, valid_claims(), rsa_key().private_pem);
  EXPECT_EQ(error_of(verifier, with_tampered_signature(token)), JwtError::bad_signature);
}

TEST(JwtVerifier, AcceptsValidEs256TokenWithRawSignature) {
  const JwtVerifier verifier(key_config(JwtAlg::es256, ec_key().public_pem));
  json::object claims = valid_claims();
  claims["dev"] = "tablet";
  const std::string token = sign_with_private_key(JwtAlg::es256, claims, ec_key().private_pem);
  EXPECT_EQ(base64url_decode(split(token).signature)->size(), 64u);
  const auto result = verifier.verify(token, kNowMs);
  ASSERT_TRUE(result.has_value()) << jwt_error_message(result.error());
  EXPECT_EQ(result->sub, "u1");
  EXPECT_EQ(result->dev, "tablet");
}

TEST(JwtVerifier, RefusesEs256TokenSignedByAnotherKeyTamperedOrOfWrongLength) {
  const JwtVerifier verifier(key_config(JwtAlg::es256, ec_key().public_pem));
  EXPECT_EQ(error_of(verifier, sign_with_private_key(JwtAlg::es256, valid_claims(), other_ec_key().private_pem)),
            JwtError::bad_signature);
  const std::string token = sign_with_private_key(JwtAlg::es256, valid_claims(), ec_key().private_pem);
  EXPECT_EQ(error_of(verifier, with_tampered_signature(token)), JwtError::bad_signature);
  Parts parts = split(token);
  parts.signature = base64url_encode(*base64url_decode(parts.signature) + std::string(1, '\0'));
  EXPECT_EQ(error_of(verifier, join(parts)), JwtError::bad_signature);
  parts.signature = base64url_encode(std::string(64, '\0'));
  EXPECT_EQ(error_of(verifier, join(parts)), JwtError::bad_signature);
}

TEST(JwtVerifier, VerifiesConcurrentlyFromManyThreads) {
  const JwtVerifier verifier(key_config(JwtAlg::es256, ec_key().public_pem));
  const std::string good = sign_with_private_key(JwtAlg::es256, valid_claims(), ec_key().private_pem);
  const std::string bad = with_tampered_signature(good);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        if (!verifier.verify(good, kNowMs).has_value()) ++wrong;
        if (verifier.verify(bad, kNowMs).has_value()) ++wrong;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(JwtVerifier, ValueThrowsTheErrorMessage) {
  const JwtVerifier verifier(hs256_config());
  const auto result = verifier.verify(sign_hs256({{"sub", "u1"}, {"exp", kNowS - 100}}, kSecret), kNowMs);
  EXPECT_THROW(
      {
        try {
          (void)result.value();
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "token expired");
          throw;
        }
      },
      std::runtime_error);
}

TEST(JwtVerifier, SurvivesMoveAndKeepsItsConfig) {
  JwtConfig config = hs256_config();
  config.issuer = "iss";
  JwtVerifier moved(config);
  const JwtVerifier verifier(std::move(moved));
  EXPECT_EQ(verifier.config().issuer, "iss");
  json::object claims = valid_claims();
  claims["iss"] = "iss";
  EXPECT_TRUE(verifier.verify(sign_hs256(claims, kSecret), kNowMs).has_value());
}

// ---------------------------------------------------------------------------
// Start-up configuration errors
// ---------------------------------------------------------------------------

TEST(JwtVerifierConfig, ThrowsOnEmptyHs256Secret) {
  EXPECT_THAT(constructor_error(JwtConfig{}), HasSubstr("secret"));
}

TEST(JwtVerifierConfig, ThrowsOnGarbageOrMissingPem) {
  EXPECT_THAT(constructor_error(key_config(JwtAlg::rs256, "not a pem")), HasSubstr("not a readable PEM"));
  EXPECT_THAT(constructor_error(key_config(JwtAlg::es256,
                                           "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")),
              HasSubstr("not a readable PEM"));
  EXPECT_THAT(constructor_error(key_config(JwtAlg::rs256, "")), HasSubstr("needs a JWT public key"));
}

TEST(JwtVerifierConfig, ThrowsOnPrivateKeyGivenAsPublicKey) {
  EXPECT_THAT(constructor_error(key_config(JwtAlg::rs256, rsa_key().private_pem)), HasSubstr("private key"));
}

TEST(JwtVerifierConfig, ThrowsOnKeyTypeNotMatchingAlgorithm) {
  EXPECT_THAT(constructor_error(key_config(JwtAlg::rs256, ec_key().public_pem)), HasSubstr("needs an RSA key"));
  EXPECT_THAT(constructor_error(key_config(JwtAlg::es256, rsa_key().public_pem)),
              HasSubstr("needs an EC P-256 key"));
}

TEST(JwtVerifierConfig, ThrowsOnEcKeyOfAnotherCurve) {
  const KeyPair p384 = pem_pair(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"), false);
  EXPECT_THAT(constructor_error(key_config(JwtAlg::es256, p384.public_pem)), HasSubstr("secp384r1"));
}

TEST(JwtVerifierConfig, ThrowsOnNegativeLeeway) {
  JwtConfig config = hs256_config();
  config.leeway = std::chrono::milliseconds(-1);
  EXPECT_THAT(constructor_error(config), HasSubstr("leeway"));
}

TEST(JwtSigner, RefusesKeyNotMatchingAlgorithm) {
  EXPECT_THROW((void)sign_with_private_key(JwtAlg::es256, valid_claims(), rsa_key().private_pem),
               std::invalid_argument);
  EXPECT_THROW((void)sign_with_private_key(JwtAlg::hs256, valid_claims(), rsa_key().private_pem),
               std::invalid_argument);
  EXPECT_THROW((void)sign_with_private_key(JwtAlg::rs256, valid_claims(), "garbage"), std::invalid_argument);
  EXPECT_THROW((void)sign_hs256(valid_claims(), ""), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// Base64url (RFC 7515 2, RFC 4648 5)
// ---------------------------------------------------------------------------

TEST(Base64url, EncodesRfc4648VectorsWithoutPadding) {
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(base64url_encode("foob"), "Zm9vYg");
  EXPECT_EQ(base64url_encode("fooba"), "Zm9vYmE");
  EXPECT_EQ(base64url_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(base64url_decode("-_8"), std::string("\xfb\xff"));
}

TEST(Base64url, RoundTripsRandomBytesOfEveryLength) {
  const unsigned seed = 20240611;
  std::mt19937 rng(seed);
  for (std::size_t len = 0; len < 200; ++len) {
    std::string bytes(len, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
    EXPECT_EQ(base64url_decode(base64url_encode(bytes)), bytes) << "seed " << seed << " length " << len;
  }
}

TEST(Base64url, RefusesInvalidText) {
  EXPECT_EQ(base64url_decode("Zg=="), std::nullopt);   // padding
  EXPECT_EQ(base64url_decode("Zm9v+w"), std::nullopt);  // standard alphabet
  EXPECT_EQ(base64url_decode("Zm9v/w"), std::nullopt);
  EXPECT_EQ(base64url_decode("Zm9vY"), std::nullopt);   // impossible length
  EXPECT_EQ(base64url_decode("Zh"), std::nullopt);      // non-zero unused bits
  EXPECT_EQ(base64url_decode("Zm 9v"), std::nullopt);
  EXPECT_EQ(base64url_decode(std::string_view("Zm\0v", 4)), std::nullopt);
}

}  // namespace
}  // namespace herald::auth
