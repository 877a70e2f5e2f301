#include "api/demo_token.hpp"

#include <gtest/gtest.h>

#include "auth/jwt.hpp"

namespace herald::api {
namespace {

config::ServerConfig demo_config() {
  config::ServerConfig c;
  c.demo = true;
  c.jwt_secret = "demo-test-secret-0123456789abcdef";
  c.jwt_issuer = "herald-demo";
  return c;
}

TEST(DemoToken, IsAShortLivedTokenTheServerAccepts) {
  const auto c = demo_config();
  const std::int64_t now = 1764000000000;
  auto r = mint_demo_token(c, R"({"user":"alice"})", now);
  ASSERT_TRUE(std::holds_alternative<DemoToken>(r));
  const auto& t = std::get<DemoToken>(r);
  EXPECT_EQ(t.exp, now / 1000 + kDemoTokenTtl.count());

  auth::JwtConfig j;
  j.alg = auth::JwtAlg::hs256;
  j.secret = c.jwt_secret;
  j.issuer = c.jwt_issuer;
  auth::JwtVerifier verifier(j);
  auto claims = verifier.verify(t.token, now);
  ASSERT_TRUE(claims.has_value());
  EXPECT_EQ(claims->sub, "alice");
}

TEST(DemoToken, RefusesUsersTheTokenCheckWouldRefuse) {
  const auto c = demo_config();
  for (const char* body : {R"({})", R"({"user":""})", R"({"user":7})", R"({"user":"a\u0001"})", "[1]"}) {
    auto r = mint_demo_token(c, body, 0);
    ASSERT_TRUE(std::holds_alternative<ItemError>(r)) << body;
    EXPECT_EQ(std::get<ItemError>(r).field, "user") << body;
  }
  auto bad = mint_demo_token(c, "{", 0);
  ASSERT_TRUE(std::holds_alternative<ItemError>(bad));
  EXPECT_EQ(std::get<ItemError>(bad).code, errc::invalid_json);
  const std::string long_user(129, 'x');
  EXPECT_TRUE(std::holds_alternative<ItemError>(mint_demo_token(c, R"({"user":")" + long_user + R"("})", 0)));
}

}  // namespace
}  // namespace herald::api
