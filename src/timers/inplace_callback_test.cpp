#include "timers/inplace_callback.hpp"

#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <memory>
#include <utility>

namespace herald::timers {
namespace {

TEST(InplaceCallback, RunsTheStoredCallable) {
  int runs = 0;
  InplaceCallback cb([&runs] { ++runs; });
  ASSERT_TRUE(cb);
  cb();
  cb();
  EXPECT_EQ(runs, 2);
}

TEST(InplaceCallback, KeepsThirtyTwoBytesOfCapturesInline) {
  std::array<void*, 4> four_pointers{};
  auto fits = [four_pointers] { (void)four_pointers; };
  auto too_big = [four_pointers, extra = 1] { (void)four_pointers, (void)extra; };
  EXPECT_TRUE(InplaceCallback::stored_inline<decltype(fits)>);
  EXPECT_FALSE(InplaceCallback::stored_inline<decltype(too_big)>);
  EXPECT_TRUE(InplaceCallback::stored_inline<std::function<void()>>);
  EXPECT_EQ(sizeof(InplaceCallback), 40u);
}

TEST(InplaceCallback, AcceptsLargeCapturesOnTheHeap) {
  std::array<int, 64> big{};
  big[63] = 5;
  int seen = 0;
  InplaceCallback cb([big, &seen] { seen = big[63]; });
  InplaceCallback moved = std::move(cb);
  EXPECT_FALSE(cb);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  moved();
  EXPECT_EQ(seen, 5);
}

TEST(InplaceCallback, AcceptsMoveOnlyCallables) {
  auto owned = std::make_unique<int>(3);
  int seen = 0;
  InplaceCallback cb([p = std::move(owned), &seen] { seen = *p; });
  cb();
  EXPECT_EQ(seen, 3);
}

TEST(InplaceCallback, DestroysCapturesExactlyOnceAcrossMoves) {
  auto token = std::make_shared<int>(0);
  {
    InplaceCallback a([token] {});
    InplaceCallback b(std::move(a));
    InplaceCallback c;
    c = std::move(b);
    EXPECT_EQ(token.use_count(), 2);
    c = nullptr;
    EXPECT_EQ(token.use_count(), 1);
    c = InplaceCallback([token] {});
    EXPECT_EQ(token.use_count(), 2);
  }
  EXPECT_EQ(token.use_count(), 1);
}

TEST(InplaceCallback, AnEmptyFunctionOrNullPointerGivesAnEmptyCallback) {
  EXPECT_FALSE(InplaceCallback(std::function<void()>{}));
  void (*none)() = nullptr;
  EXPECT_FALSE(InplaceCallback(none));
  EXPECT_FALSE(InplaceCallback(nullptr));
  EXPECT_FALSE(InplaceCallback());
}

}  // namespace
}  // namespace herald::timers
