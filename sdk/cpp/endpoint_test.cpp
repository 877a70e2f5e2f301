#include "herald/endpoint.hpp"

#include <gtest/gtest.h>

namespace herald::sdk {
namespace {

TEST(ConnectEndpoint, AddsDeviceLastSeqAndEpochToTheQuery) {
  auto ep = connect_endpoint("ws://127.0.0.1:8080/v1/ws", "d1", 42, "e7c1");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->host, "127.0.0.1");
  EXPECT_EQ(ep->port, "8080");
  EXPECT_EQ(ep->host_header, "127.0.0.1:8080");
  EXPECT_EQ(ep->target, "/v1/ws?device=d1&last_seq=42&epoch=e7c1");
}

TEST(ConnectEndpoint, AddsTheAttempt) {
  auto ep = connect_endpoint("ws://127.0.0.1:8080/v1/ws", "d1", std::nullopt, "", "9f3a.2");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->target, "/v1/ws?device=d1&attempt=9f3a.2");
}

TEST(ConnectEndpoint, LeavesOutWhatIsNotGiven) {
  auto ep = connect_endpoint("ws://127.0.0.1:8080/v1/ws", "", std::nullopt, "");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->target, "/v1/ws");
}

TEST(ConnectEndpoint, ReplacesItsParametersAlreadyInTheUrlAndKeepsOthers) {
  auto ep = connect_endpoint("ws://h:1/v1/ws?x=1&device=old&last_seq=1", "new", 7, "");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->target, "/v1/ws?x=1&device=new&last_seq=7");
}

TEST(ConnectEndpoint, DropsAResumePositionWrittenIntoTheUrl) {
  // The client passes its position through ClientOptions::last_seq and epoch.
  auto ep = connect_endpoint("ws://h:1/v1/ws?last_seq=5&epoch=e0&attempt=x.1&x=1", "d1", std::nullopt, "");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->target, "/v1/ws?x=1&device=d1");
}

TEST(ConnectEndpoint, PercentEncodesValues) {
  auto ep = connect_endpoint("ws://h:1/v1/ws", "d1", 0, "a b&c");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->target, "/v1/ws?device=d1&last_seq=0&epoch=a%20b%26c");
}

TEST(ParseEndpoint, DefaultsPortTo80AndPathToSlash) {
  auto ep = parse_endpoint("ws://example.com");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->port, "80");
  EXPECT_EQ(ep->target, "/");
  EXPECT_EQ(ep->host_header, "example.com");
}

TEST(ParseEndpoint, AcceptsHttpForTheSamePort) {
  auto ep = parse_endpoint("http://127.0.0.1:9/prefix");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->target, "/prefix");
}

TEST(ParseEndpoint, GivesTheResolverAnIpv6AddressWithoutBrackets) {
  auto ep = parse_endpoint("ws://[::1]:9000/v1/ws");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->host, "::1");
  EXPECT_EQ(ep->host_header, "[::1]:9000");
}

TEST(ParseEndpoint, RefusesTlsOtherSchemesAndNonUrls) {
  EXPECT_FALSE(parse_endpoint("wss://example.com/v1/ws"));
  EXPECT_FALSE(parse_endpoint("https://example.com"));
  EXPECT_FALSE(parse_endpoint("ftp://example.com"));
  EXPECT_FALSE(parse_endpoint("not a url"));
  EXPECT_FALSE(parse_endpoint("ws:///v1/ws"));
}

TEST(ParseEndpoint, RefusesAPortOutOfRangeOrNotANumber) {
  EXPECT_FALSE(parse_endpoint("ws://127.0.0.1:99999/v1/ws"));
  EXPECT_FALSE(parse_endpoint("ws://127.0.0.1:0/v1/ws"));
  EXPECT_FALSE(parse_endpoint("ws://127.0.0.1:abc/v1/ws"));
  auto ep = parse_endpoint("ws://127.0.0.1:/v1/ws");  // empty: the default
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->port, "80");
  ep = parse_endpoint("ws://127.0.0.1:0080/v1/ws");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->port, "80");
}

}  // namespace
}  // namespace herald::sdk
