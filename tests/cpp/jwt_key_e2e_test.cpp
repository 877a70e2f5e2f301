// RS256/ES256 with a public key file, through the real binary: the only
// algorithm accepted is the configured one (PROTOCOL.md 2).
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <filesystem>
#include <fstream>

#include <boost/json.hpp>

#include "auth/jwt.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"
#include "herald/http_api.hpp"
#include "server_process.hpp"

namespace herald {
namespace {

struct KeyPair {
  std::string private_pem;
  std::string public_pem;
};

KeyPair generate(const char* type, const char* param) {
  EVP_PKEY* key = std::string_view(type) == "RSA" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048))
                                                  : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", param);
  KeyPair kp;
  BIO* priv = BIO_new(BIO_s_mem());
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr);
  PEM_write_bio_PUBKEY(pub, key);
  char* data = nullptr;
  long n = BIO_get_mem_data(priv, &data);
  kp.private_pem.assign(data, static_cast<std::size_t>(n));
  n = BIO_get_mem_data(pub, &data);
  kp.public_pem.assign(data, static_cast<std::size_t>(n));
  BIO_free(priv);
  BIO_free(pub);
  EVP_PKEY_free(key);
  return kp;
}

int upgrade_status(const testing::ServerProcess& s, const std::string& token) {
  auto r = sdk::http_request("GET", s.url(), "/v1/ws", "",
                             {}, {{"Connection", "Upgrade"}, {"Upgrade", "websocket"},
                                  {"Sec-WebSocket-Version", "13"},
                                  {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                                  {"Authorization", "Bearer " + token}});
  return r.status;
}

void check_algorithm(auth::JwtAlg alg, const char* name, const KeyPair& kp) {
  const auto path = std::filesystem::temp_directory_path() / ("herald-pub-" + random_hex(4) + ".pem");
  std::ofstream(path) << kp.public_pem;
  testing::ServerProcess server({{"HERALD_JWT_ALG", name}, {"HERALD_JWT_PUBLIC_KEY_FILE", path.string()}});
  server.start();
  boost::json::object claims{{"sub", "keyed"}, {"exp", unix_ms_now() / 1000 + 600}};
  EXPECT_EQ(upgrade_status(server, auth::sign_with_private_key(alg, claims, kp.private_pem)), 101) << name;
  // An HS256 token is refused, also one keyed with the public key text.
  EXPECT_EQ(upgrade_status(server, auth::sign_hs256(claims, testing::kTestSecret)), 401) << name;
  EXPECT_EQ(upgrade_status(server, auth::sign_hs256(claims, kp.public_pem)), 401) << name;
  // A token signed by another key is refused.
  const KeyPair other = generate(alg == auth::JwtAlg::rs256 ? "RSA" : "EC", "P-256");
  EXPECT_EQ(upgrade_status(server, auth::sign_with_private_key(alg, claims, other.private_pem)), 401) << name;
  std::filesystem::remove(path);
}

TEST(JwtPublicKeyEndToEnd, Es256AcceptsOnlyTokensOfTheConfiguredKey) {
  check_algorithm(auth::JwtAlg::es256, "ES256", generate("EC", "P-256"));
}

TEST(JwtPublicKeyEndToEnd, Rs256AcceptsOnlyTokensOfTheConfiguredKey) {
  check_algorithm(auth::JwtAlg::rs256, "RS256", generate("RSA", nullptr));
}

}  // namespace
}  // namespace herald
