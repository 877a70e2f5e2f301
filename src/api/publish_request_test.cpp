#include "api/publish_request.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace herald::api {
namespace {
namespace json = boost::json;

std::variant<PublishItem, ItemError> parse(std::string_view text, std::string_view traceparent = {}) {
  return parse_publish(json::parse(text).as_object(), PublishLimits{64, 3}, traceparent, 1000);
}

ItemError err(const std::variant<PublishItem, ItemError>& r) { return std::get<ItemError>(r); }
PublishItem ok(const std::variant<PublishItem, ItemError>& r) { return std::get<PublishItem>(r); }

TEST(PublishRequest, AcceptsAMinimalPublishAndGeneratesIdAndTrace) {
  auto r = parse(R"({"user":"u1","data":{"a":1}})");
  const auto item = ok(r);
  ASSERT_EQ(item.messages.size(), 1u);
  EXPECT_EQ(item.messages[0].user, "u1");
  EXPECT_EQ(item.messages[0].data_json, R"({"a":1})");
  EXPECT_FALSE(item.messages[0].id.empty());
  EXPECT_EQ(item.messages[0].trace_id.size(), 32u);
  EXPECT_EQ(item.messages[0].accepted_at_ms, 1000);
}

TEST(PublishRequest, DataNestedUpTo256LevelsIsAcceptedDeeperIsInvalidJsonThatSaysSo) {
  const auto body = [](std::size_t arrays) {
    return R"({"user":"u1","data":)" + std::string(arrays, '[') + std::string(arrays, ']') + "}";
  };
  const PublishLimits limits{1 << 20, 3};
  const auto deep_ok = parse_publish_body(body(255), false, limits, {}, 1000);
  ASSERT_TRUE(std::holds_alternative<ParsedItems>(deep_ok));
  const auto& item = std::get<PublishItem>(std::get<ParsedItems>(deep_ok)[0]);
  EXPECT_EQ(item.messages[0].data_json, std::string(255, '[') + std::string(255, ']'));
  const auto too_deep = parse_publish_body(body(256), false, limits, {}, 1000);
  ASSERT_TRUE(std::holds_alternative<ItemError>(too_deep));
  EXPECT_EQ(std::get<ItemError>(too_deep).code, errc::invalid_json);
  EXPECT_EQ(std::get<ItemError>(too_deep).message, "body nests JSON deeper than 256 levels");
}

TEST(PublishRequest, TheSizeOfDataIsItsTextAsReceivedWhitespaceIncluded) {
  // PROTOCOL.md 10. 20 bytes compacted ({"a":"xxxxxxxxxxxx"}), 22 as sent.
  const PublishLimits limits{21, 3};
  const std::string spaced = R"({"user":"u1","data":{"a": "xxxxxxxxxxxx" }})";
  const auto refused = parse_publish_body(spaced, false, limits, {}, 1000);
  const auto& item = std::get<ParsedItems>(refused)[0];
  ASSERT_TRUE(std::holds_alternative<ItemError>(item));
  EXPECT_EQ(std::get<ItemError>(item).code, errc::payload_too_large);
  EXPECT_EQ(std::get<ItemError>(item).message, "data is 22 bytes, over the limit of 21");
  // The same data compacted fits, and is stored compacted.
  const auto fits = parse_publish_body(R"({"user":"u1","data":{"a":"xxxxxxxxxxxx"}})", false, limits, {}, 1000);
  EXPECT_EQ(std::get<PublishItem>(std::get<ParsedItems>(fits)[0]).messages[0].data_json, R"({"a":"xxxxxxxxxxxx"})");
  // In a batch, item by item.
  const auto batch = parse_publish_body(
      R"({"messages":[{"user":"u1","data":{"a":"xxxxxxxxxxxx"}},{"user":"u1","data":{"a": "xxxxxxxxxxxx" }}]})", true,
      limits, {}, 1000);
  const auto& items = std::get<ParsedItems>(batch);
  EXPECT_TRUE(std::holds_alternative<PublishItem>(items[0]));
  ASSERT_TRUE(std::holds_alternative<ItemError>(items[1]));
  EXPECT_EQ(std::get<ItemError>(items[1]).message, "data is 22 bytes, over the limit of 21");
}

TEST(PublishRequest, DataMayBeNullButMustBePresent) {
  EXPECT_EQ(ok(parse(R"({"user":"u1","data":null})")).messages[0].data_json, "null");
  EXPECT_EQ(err(parse(R"({"user":"u1"})")).field, "data");
}

TEST(PublishRequest, KeepsLargeIntegersExact) {
  EXPECT_EQ(ok(parse(R"({"user":"u1","data":9007199254740993})")).messages[0].data_json,
            "9007199254740993");
}

TEST(PublishRequest, RefusesOversizedDataWith413) {
  auto e = err(parse(R"({"user":"u1","data":"0123456789012345678901234567890123456789012345678901234567890123456789"})"));
  EXPECT_EQ(e.code, errc::payload_too_large);
  EXPECT_EQ(e.field, "data");
}

TEST(PublishRequest, RefusesBadFieldsNamingThem) {
  EXPECT_EQ(err(parse(R"({"data":1})")).field, "user");
  EXPECT_EQ(err(parse(R"({"user":"","data":1})")).field, "user");
  EXPECT_EQ(err(parse(R"({"user":"a\u0001b","data":1})")).field, "user");
  EXPECT_EQ(err(parse(R"({"user":"a\u0085b","data":1})")).field, "user");  // a C1 control
  EXPECT_EQ(err(parse(R"({"users":["a","b\u009f"],"data":1})")).field, "users");
  EXPECT_EQ(err(parse(R"({"users":["a","b","c","d"],"data":1})")).field, "users");
  EXPECT_EQ(err(parse(R"({"user":"u","data":1,"priority":"urgent"})")).field, "priority");
  EXPECT_EQ(err(parse(R"({"user":"u","data":1,"ttl_ms":-5})")).field, "ttl_ms");
  // Beyond int64 (found by fuzz/publish_body): refused, not converted.
  EXPECT_EQ(err(parse(R"({"user":"u","data":1,"ttl_ms":1e61})")).field, "ttl_ms");
  EXPECT_EQ(err(parse(R"({"user":"u","data":1,"deliver_at":-1e300})")).field, "deliver_at");
  EXPECT_EQ(err(parse(R"({"user":"u","data":1,"event":7})")).field, "event");
  EXPECT_EQ(err(parse(R"({"user":"u","data":1,"id":""})")).field, "id");
}

TEST(PublishRequest, FansOutToEveryUserWithOneId) {
  const auto item = ok(parse(R"({"users":["a","b"],"data":1,"id":"x"})"));
  ASSERT_EQ(item.messages.size(), 2u);
  EXPECT_TRUE(item.multi_user);
  EXPECT_EQ(item.messages[1].user, "b");
  EXPECT_EQ(item.messages[1].id, "x");
}

TEST(PublishRequest, TraceparentWinsOverTheField) {
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto r = parse(R"({"user":"u","data":1,"trace_id":"mine"})", trace_id_from_traceparent(tp));
  EXPECT_EQ(ok(r).messages[0].trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(ok(parse(R"({"user":"u","data":1,"trace_id":"mine"})")).messages[0].trace_id, "mine");
  EXPECT_EQ(trace_id_from_traceparent("garbage"), "");
}

TEST(PublishRequest, PastDeliverAtAppendsAtOnceAndFutureSchedules) {
  EXPECT_FALSE(ok(parse(R"({"user":"u","data":1,"deliver_at":500})")).deliver_at);
  EXPECT_EQ(ok(parse(R"({"user":"u","data":1,"deliver_at":5000})")).deliver_at, 5000);
}

}  // namespace
}  // namespace herald::api
