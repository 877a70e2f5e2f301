#include "config/config_options.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "config/secrets.hpp"

namespace herald::config {
namespace {

using Env = std::map<std::string, std::string>;

TEST(ConfigOptions, DefaultsMatchTheProtocol) {
  Env env;
  auto c = load_config("", {}, &env);
  EXPECT_EQ(c.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.data_dir, "./herald-data");
  EXPECT_EQ(c.store, StoreKind::rocksdb);
  EXPECT_EQ(c.sync, SyncPolicy::always);
  EXPECT_EQ(c.heartbeat.count(), 25000);
  EXPECT_EQ(c.idle_timeout.count(), 75000);
  EXPECT_EQ(c.ack_timeout.count(), 2000);
  EXPECT_EQ(c.max_attempts, 4u);
  EXPECT_EQ(c.max_inflight, 64u);
  EXPECT_EQ(c.max_message_bytes, 65536u);
  EXPECT_EQ(c.max_connections_per_user, 16u);
  EXPECT_EQ(c.max_send_queue_bytes, 1048576u);
}

TEST(ConfigOptions, FlagsBeatEnvironmentWhichBeatsTheFile) {
  const auto path = std::filesystem::temp_directory_path() / "herald_config_test.toml";
  {
    std::ofstream out(path);
    out << "max_inflight = 8\nheartbeat_ms = 1000\nidle_timeout_ms = 3000\napi_keys = [\"a\", \"b\"]\n";
  }
  Env env{{"HERALD_HEARTBEAT_MS", "2000"}, {"HERALD_IDLE_TIMEOUT_MS", "4000"}};
  auto c = load_config(path.string(), {{"idle_timeout_ms", "5000"}}, &env);
  EXPECT_EQ(c.max_inflight, 8u);
  EXPECT_EQ(c.heartbeat.count(), 2000);
  EXPECT_EQ(c.idle_timeout.count(), 5000);
  EXPECT_EQ(c.api_keys, (std::vector<std::string>{"a", "b"}));
  std::filesystem::remove(path);
}

TEST(ConfigOptions, RefusesBadValuesWithTheOptionName) {
  Env env{{"HERALD_MAX_INFLIGHT", "lots"}};
  try {
    load_config("", {}, &env);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("max_inflight"), std::string::npos);
  }
  Env store{{"HERALD_STORE", "mongodb"}};
  EXPECT_THROW(load_config("", {}, &store), ConfigError);
  Env listen{{"HERALD_LISTEN", "nohost"}};
  EXPECT_THROW(load_config("", {}, &listen), ConfigError);
}

TEST(ConfigOptions, RefusesTheDemoWithoutAnHs256Secret) {
  Env env{{"HERALD_DEMO", "true"}, {"HERALD_JWT_ALG", "RS256"}, {"HERALD_JWT_PUBLIC_KEY_FILE", "/nonexistent.pem"}};
  try {
    load_config("", {}, &env);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("demo"), std::string::npos);
  }
  Env hs{{"HERALD_DEMO", "true"}};
  EXPECT_TRUE(load_config("", {}, &hs).demo);
}

TEST(ConfigOptions, NamesFollowOneRule) {
  EXPECT_EQ(env_name("max_inflight"), "HERALD_MAX_INFLIGHT");
  EXPECT_EQ(flag_name("max_inflight"), "--max-inflight");
}

TEST(ConfigOptions, EveryOptionIsDocumented) {
  std::ifstream in(std::string(HERALD_SOURCE_DIR) + "/docs/configuration.md");
  ASSERT_TRUE(in) << "docs/configuration.md missing";
  std::string doc((std::istreambuf_iterator<char>(in)), {});
  for (const auto& o : option_table()) {
    EXPECT_NE(doc.find("`" + env_name(o.key) + "`"), std::string::npos) << o.key;
  }
}

TEST(Secrets, AreGeneratedOnceAndReused) {
  const auto dir = std::filesystem::temp_directory_path() / ("herald_secrets_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  ServerConfig a;
  a.data_dir = dir.string();
  EXPECT_EQ(resolve_secrets(a).size(), 2u);
  ServerConfig b;
  b.data_dir = dir.string();
  resolve_secrets(b);
  EXPECT_EQ(a.jwt_secret, b.jwt_secret);
  EXPECT_EQ(a.api_keys, b.api_keys);
  EXPECT_GE(a.jwt_secret.size(), 32u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace herald::config
