#include "protocol/json_spans.hpp"

#include <gtest/gtest.h>

#include <string>

namespace herald::protocol {
namespace {

TEST(JsonSpans, AMembersValueIsMeasuredAsReceivedWhitespaceAndEscapesIncluded) {
  EXPECT_EQ(received_member_size(R"({"user":"u","data":"abc"})", "data"), 5u);
  EXPECT_EQ(received_member_size(R"({"user": "u", "data": {"a": 1, "b": [1, 2]}})", "data"),
            std::string(R"({"a": 1, "b": [1, 2]})").size());
  EXPECT_EQ(received_member_size(" {\n \"data\" :\t[ 1 ,2 ]\r\n, \"z\":1 } ", "data"), std::string("[ 1 ,2 ]").size());
  EXPECT_EQ(received_member_size(R"({"data":"\u0041\/"})", "data"), std::string(R"("\u0041\/")").size());
  EXPECT_EQ(received_member_size(R"({"data":12345678901234567890123})", "data"), 23u);
  EXPECT_EQ(received_member_size(R"({"data":null})", "data"), 4u);
  EXPECT_EQ(received_member_size(R"({"data":-1.5e3,"x":"}"})", "data"), 6u);
  // Keys are compared by value, and a key given twice counts last.
  EXPECT_EQ(received_member_size(R"({"d\u0061ta":[1],"data":{}})", "data"), 2u);
  EXPECT_EQ(received_member_size(R"({"x":{"data":"deep"}, "y":"data"})", "data"), std::nullopt);
  EXPECT_EQ(received_member_size(R"({})", "data"), std::nullopt);
  EXPECT_EQ(received_member_size(R"([1,2])", "data"), std::nullopt);
}

TEST(JsonSpans, EveryBatchItemsDataIsMeasured) {
  const auto sizes = received_batch_data_sizes(
      R"({"messages": [ {"user":"a","data": { "k" : 1 }}, 7, {"user":"b"} , {"data":"x y"} ], "z": {}})");
  ASSERT_EQ(sizes.size(), 2u);
  EXPECT_EQ(sizes.at(0), std::string(R"({ "k" : 1 })").size());
  EXPECT_EQ(sizes.at(3), 5u);
  EXPECT_TRUE(received_batch_data_sizes(R"({"messages":[]})").empty());
  EXPECT_TRUE(received_batch_data_sizes(R"({"messages":{}})").empty());
  EXPECT_TRUE(received_batch_data_sizes(R"({"other":[{"data":1}]})").empty());
}

TEST(JsonSpans, TextThatIsNotAnObjectGivesNothing) {
  for (const char* bad : {"", "   ", "{", R"({"data")", R"({"data":)", R"({"data":1)", R"({"data" 1})", "nope"}) {
    EXPECT_EQ(received_member_size(bad, "data"), std::nullopt) << bad;
    EXPECT_TRUE(received_batch_data_sizes(bad).empty()) << bad;
  }
}

}  // namespace
}  // namespace herald::protocol
