#include "web/web_assets.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace herald::web {
namespace {

const WebAsset* find(std::string_view path) {
  for (const auto& a : web_assets()) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

TEST(WebAssets, HoldTheDashboardForEveryoneAndTheDemoOnlyInDemoMode) {
  const auto* dashboard = find("/dashboard");
  ASSERT_NE(dashboard, nullptr);
  EXPECT_FALSE(dashboard->demo_only);
  EXPECT_EQ(dashboard->content_type, "text/html; charset=utf-8");
  EXPECT_TRUE(dashboard->body.starts_with("<!doctype html>"));
  for (const auto& a : web_assets()) {
    EXPECT_EQ(a.demo_only, a.path.starts_with("/demo")) << a.path;
    EXPECT_FALSE(a.body.empty()) << a.path;
  }
}

TEST(WebAssets, CarryTheSdkSourcesTheDemoImports) {
  const auto* sdk = find("/demo/sdk/index.js");
  ASSERT_NE(sdk, nullptr);
  EXPECT_EQ(sdk->content_type, "text/javascript; charset=utf-8");
  EXPECT_NE(sdk->body.find("./client.js"), std::string_view::npos);
  ASSERT_NE(find("/demo/sdk/client.js"), nullptr);
}

TEST(WebAssets, HaveOnePathEach) {
  std::set<std::string_view> paths;
  for (const auto& a : web_assets()) EXPECT_TRUE(paths.insert(a.path).second) << a.path;
}

}  // namespace
}  // namespace herald::web
