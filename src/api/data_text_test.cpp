#include "api/data_text.hpp"

#include <gtest/gtest.h>

namespace herald::api {
namespace {

TEST(DataText, KeepsIntegersBeyondSixtyFourBitsDigitForDigit) {
  auto t = data_texts(R"({"user":"u","data":{"n":12345678901234567890123,"f":1.50,"neg":-0}})", false);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0], R"({"n":12345678901234567890123,"f":1.50,"neg":-0})");
}

TEST(DataText, CopiesEveryKindOfValue) {
  auto t = data_texts(R"({"data" : [1, "a\"b", true, null, {"x": [ ] }, {}], "user":"u"})", false);
  EXPECT_EQ(t[0], R"([1,"a\"b",true,null,{"x":[]},{}])");
  EXPECT_EQ(data_texts(R"({"user":"u","data":"only"})", false)[0], R"("only")");
  EXPECT_EQ(data_texts(R"({"user":"u","data":null})", false)[0], "null");
  EXPECT_EQ(data_texts(R"({"user":"u","data":7})", false)[0], "7");
}

TEST(DataText, IgnoresDataKeysThatAreNotThePublishField) {
  auto t = data_texts(R"({"user":"u","meta":{"data":1},"data":{"data":2}})", false);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0], R"({"data":2})");
  EXPECT_TRUE(data_texts(R"({"user":"u"})", false).empty());
}

TEST(DataText, FindsEachBatchItemByPosition) {
  auto t = data_texts(
      R"({"messages":[{"user":"a","data":1e400},{"user":"b"},{"data":[99999999999999999999],"user":"c"},5]})",
      true);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0], "1e400");
  EXPECT_EQ(t[2], "[99999999999999999999]");
}

TEST(DataText, GivesNothingForBrokenJson) {
  EXPECT_TRUE(data_texts(R"({"user":"u","data":[1,2)", false).empty());
}

}  // namespace
}  // namespace herald::api
