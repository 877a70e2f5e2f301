#include "core/text.hpp"

#include <gtest/gtest.h>

#include <string>

namespace herald {
namespace {

TEST(UserId, IsOneTo128BytesOfUtf8) {
  EXPECT_TRUE(is_valid_user_id("u"));
  EXPECT_TRUE(is_valid_user_id(std::string(128, 'a')));
  EXPECT_TRUE(is_valid_user_id("用户-ü-👤"));
  EXPECT_FALSE(is_valid_user_id(""));
  EXPECT_FALSE(is_valid_user_id(std::string(129, 'a')));
  EXPECT_FALSE(is_valid_user_id("a\xff" "b"));      // not UTF-8
  EXPECT_FALSE(is_valid_user_id("a\xc0\xaf" "b"));  // overlong '/'
}

TEST(UserId, RefusesEveryControlCharacter) {
  // Unicode category Cc: U+0000..U+001F, U+007F, U+0080..U+009F.
  EXPECT_FALSE(is_valid_user_id(std::string("a\0b", 3)));
  EXPECT_FALSE(is_valid_user_id("a\x1f" "b"));
  EXPECT_FALSE(is_valid_user_id("a\x7f" "b"));
  EXPECT_FALSE(is_valid_user_id("a\xc2\x80" "b"));
  EXPECT_FALSE(is_valid_user_id("a\xc2\x85" "b"));
  EXPECT_FALSE(is_valid_user_id("\xc2\x9f"));
  // Their neighbours are not controls.
  EXPECT_TRUE(is_valid_user_id("a b~"));
  EXPECT_TRUE(is_valid_user_id("a\xc2\xa0" "b"));  // U+00A0
  EXPECT_TRUE(is_valid_user_id("\xc3\x85"));       // U+00C5: 0x85 as a continuation byte
}

TEST(Utf8, RefusesSurrogatesAndBeyondU10FFFF) {
  EXPECT_TRUE(is_valid_utf8("\xed\x9f\xbf"));       // U+D7FF
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // U+D800
  EXPECT_TRUE(is_valid_utf8("\xf4\x8f\xbf\xbf"));   // U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(is_valid_utf8("\xe2\x82"));          // truncated
}

}  // namespace
}  // namespace herald
