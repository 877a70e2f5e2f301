#include "protocol/json_text.hpp"

#include <gtest/gtest.h>

namespace herald::protocol {
namespace {

TEST(JsonText, KeepsIntegersBeyondSixtyFourBitsDigitForDigit) {
  auto t = member_text(R"({"user":"u","data":{"n":12345678901234567890123,"f":1.50,"neg":-0,"inf":1e400}})", "data");
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, R"({"n":12345678901234567890123,"f":1.50,"neg":-0,"inf":1e400})");
}

TEST(JsonText, CopiesEveryKindOfValue) {
  EXPECT_EQ(member_text(R"({"data" : [1, "a\"b", true, null, {"x": [ ] }, {}], "user":"u"})", "data"),
            R"([1,"a\"b",true,null,{"x":[]},{}])");
  EXPECT_EQ(member_text(R"({"user":"u","data":"only"})", "data"), R"("only")");
  EXPECT_EQ(member_text(R"({"user":"u","data":null})", "data"), "null");
  EXPECT_EQ(member_text(R"({"user":"u","data":7})", "data"), "7");
  EXPECT_EQ(member_text(R"({"type":"ping","id":1e999,"ts":-0.0})", "id"), "1e999");
}

TEST(JsonText, IgnoresDataKeysThatAreNotThePublishField) {
  EXPECT_EQ(member_text(R"({"user":"u","meta":{"data":1},"data":{"data":2}})", "data"), R"({"data":2})");
  EXPECT_FALSE(member_text(R"({"user":"u"})", "data"));
  EXPECT_FALSE(member_text(R"([{"data":1}])", "data"));
}

TEST(JsonText, FindsEachBatchItemByPosition) {
  auto t = batch_data_texts(
      R"({"messages":[{"user":"a","data":1e400},{"user":"b"},{"data":[99999999999999999999],"user":"c"},5]})");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0], "1e400");
  EXPECT_EQ(t[2], "[99999999999999999999]");
}

TEST(JsonText, GivesNothingForBrokenJson) {
  EXPECT_FALSE(member_text(R"({"user":"u","data":[1,2)", "data"));
  EXPECT_TRUE(batch_data_texts(R"({"messages":[{"data":[1,2)").empty());
}

}  // namespace
}  // namespace herald::protocol
