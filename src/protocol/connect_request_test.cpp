#include "protocol/connect_request.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace herald::protocol {
namespace {

TEST(ConnectRequest, OnlyTheWebSocketPathIsAccepted) {
  EXPECT_TRUE(parse_connect_request("/v1/ws", std::nullopt, std::nullopt).path_ok);
  EXPECT_TRUE(parse_connect_request("/v1/ws?device=a", std::nullopt, std::nullopt).path_ok);
  EXPECT_FALSE(parse_connect_request("/v1/wss", std::nullopt, std::nullopt).path_ok);
  EXPECT_FALSE(parse_connect_request("not a target", std::nullopt, std::nullopt).path_ok);
}

TEST(ConnectRequest, AMalformedQueryAtTheWebSocketPathIsABadRequestAfterTheHeaderToken) {
  // A raw non-ASCII byte is not allowed in a request target.
  const auto r = parse_connect_request("/v1/ws?device=\xc3\xa9", "Bearer h", std::nullopt);
  EXPECT_TRUE(r.path_ok);
  ASSERT_TRUE(r.param_error.has_value());
  EXPECT_EQ(r.param_error->field, "");
  EXPECT_EQ(r.token, "h");
  EXPECT_EQ(parse_connect_request("/v1/ws?x=\xc3\xa9", std::nullopt, "herald_token=c").token, "c");
  EXPECT_FALSE(parse_connect_request("/v1/ws?token=t&x=\xc3\xa9", std::nullopt, std::nullopt).token.has_value());
  EXPECT_FALSE(parse_connect_request("/v1/other?x=\xc3\xa9", std::nullopt, std::nullopt).path_ok);
}

TEST(ConnectRequest, TheFirstTokenSourcePresentWinsWithoutFallback) {
  EXPECT_EQ(parse_connect_request("/v1/ws?token=q", "Bearer h", "herald_token=c").token, "h");
  // A header that is not a Bearer token is an empty (invalid) token, not a reason to look further.
  EXPECT_EQ(parse_connect_request("/v1/ws?token=q", "Basic xyz", std::nullopt).token, "");
  EXPECT_EQ(parse_connect_request("/v1/ws?token=q", std::nullopt, "herald_token=c").token, "q");
  EXPECT_EQ(parse_connect_request("/v1/ws", std::nullopt, "a=1; herald_token=c; b=2").token, "c");
  EXPECT_FALSE(parse_connect_request("/v1/ws", std::nullopt, "a=1").token.has_value());
  EXPECT_FALSE(parse_connect_request("/v1/ws", std::nullopt, std::nullopt).token.has_value());
}

TEST(ConnectRequest, QueryParametersArePercentDecoded) {
  const auto r = parse_connect_request("/v1/ws?device=ph%3Aone&last_seq=42&epoch=e%201", std::nullopt, std::nullopt);
  EXPECT_FALSE(r.param_error);
  EXPECT_EQ(r.device, "ph:one");
  EXPECT_EQ(r.last_seq, 42u);
  EXPECT_EQ(r.epoch, "e 1");
}

TEST(ConnectRequest, TheFirstBadParameterIsNamed) {
  EXPECT_EQ(parse_connect_request("/v1/ws?device=", std::nullopt, std::nullopt).param_error->field, "device");
  EXPECT_EQ(parse_connect_request("/v1/ws?device=a/b", std::nullopt, std::nullopt).param_error->field, "device");
  EXPECT_EQ(parse_connect_request("/v1/ws?last_seq=-1", std::nullopt, std::nullopt).param_error->field, "last_seq");
  EXPECT_EQ(parse_connect_request("/v1/ws?last_seq=", std::nullopt, std::nullopt).param_error->field, "last_seq");
  EXPECT_EQ(parse_connect_request("/v1/ws?last_seq=99999999999999999999999", std::nullopt, std::nullopt)
                .param_error->field,
            "last_seq");
  EXPECT_EQ(parse_connect_request("/v1/ws?epoch=" + std::string(kMaxEpochBytes + 1, 'e'), std::nullopt, std::nullopt)
                .param_error->field,
            "epoch");
  EXPECT_EQ(parse_connect_request("/v1/ws?device=&last_seq=x", std::nullopt, std::nullopt).param_error->field,
            "device");
}

TEST(ConnectRequest, AnAttemptIsASessionAndAPositiveNumber) {
  const auto r = parse_connect_request("/v1/ws?attempt=k3F_9-a.17", std::nullopt, std::nullopt);
  EXPECT_FALSE(r.param_error);
  ASSERT_TRUE(r.attempt);
  EXPECT_EQ(r.attempt->session, "k3F_9-a");
  EXPECT_EQ(r.attempt->n, 17u);
  EXPECT_FALSE(parse_connect_request("/v1/ws", std::nullopt, std::nullopt).attempt);
  for (const std::string& bad : std::vector<std::string>{"", "s", "s.", ".1", "s.0", "s.-1", "s.1x", "a.b.1", "s%20p.1", "s.99999999999999999999999",
                                std::string(65, 's') + ".1"}) {
    const auto b = parse_connect_request("/v1/ws?attempt=" + bad, std::nullopt, std::nullopt);
    ASSERT_TRUE(b.param_error) << bad;
    EXPECT_EQ(b.param_error->field, "attempt") << bad;
  }
  EXPECT_TRUE(parse_connect_attempt(std::string(64, 's') + ".1"));
}

TEST(ConnectRequest, DeviceIdsAreOneToSixtyFourCharactersOfTheAlphabet) {
  EXPECT_TRUE(valid_device_id("Phone-1.a_b:c"));
  EXPECT_TRUE(valid_device_id(std::string(64, 'x')));
  EXPECT_FALSE(valid_device_id(std::string(65, 'x')));
  EXPECT_FALSE(valid_device_id(""));
  EXPECT_FALSE(valid_device_id("a b"));
  EXPECT_FALSE(valid_device_id("\xc3\xa9"));
}

}  // namespace
}  // namespace herald::protocol
