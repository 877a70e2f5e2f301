#include "auth/api_keys.hpp"

#include <gtest/gtest.h>

namespace herald::auth {
namespace {

TEST(ApiKeys, AcceptsBearerWithConfiguredKey) {
  const ApiKeys keys({"k1", "k3"});
  EXPECT_TRUE(keys.check_authorization("Bearer k1"));
  EXPECT_TRUE(keys.check_authorization("Bearer k3"));
}

TEST(ApiKeys, AcceptsSchemeInAnyCaseAndSurroundingSpaces) {
  const ApiKeys keys({"k1"});
  EXPECT_TRUE(keys.check_authorization("bearer k1"));
  EXPECT_TRUE(keys.check_authorization("BEARER  k1 "));
}

TEST(ApiKeys, RefusesUnknownKey) {
  const ApiKeys keys({"k1"});
  EXPECT_FALSE(keys.check_authorization("Bearer k2"));
  EXPECT_FALSE(keys.check_authorization("Bearer k"));
  EXPECT_FALSE(keys.check_authorization("Bearer k10"));
  EXPECT_FALSE(keys.check_authorization("Bearer K1"));
}

TEST(ApiKeys, RefusesKeyWithoutBearerScheme) {
  const ApiKeys keys({"k1"});
  EXPECT_FALSE(keys.check_authorization("k1"));
  EXPECT_FALSE(keys.check_authorization("Basic k1"));
  EXPECT_FALSE(keys.check_authorization("Bearerk1"));
  EXPECT_FALSE(keys.check_authorization("Bearer"));
  EXPECT_FALSE(keys.check_authorization("Bearer "));
  EXPECT_FALSE(keys.check_authorization(""));
}

TEST(ApiKeys, ChecksBareKeysExactly) {
  const ApiKeys keys({"k1"});
  EXPECT_TRUE(keys.check_key("k1"));
  EXPECT_FALSE(keys.check_key("k1 "));
  EXPECT_FALSE(keys.check_key(""));
}

TEST(ApiKeys, DropsEmptyConfiguredKeys) {
  const ApiKeys keys({"", "k1", ""});
  EXPECT_EQ(keys.size(), 1u);
  EXPECT_FALSE(keys.check_key(""));
  EXPECT_FALSE(keys.check_authorization("Bearer "));
}

TEST(ApiKeys, RefusesEverythingWhenNoKeysAreConfigured) {
  const ApiKeys keys({});
  EXPECT_EQ(keys.size(), 0u);
  EXPECT_FALSE(keys.check_authorization("Bearer k1"));
}

}  // namespace
}  // namespace herald::auth
