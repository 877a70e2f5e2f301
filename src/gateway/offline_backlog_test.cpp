#include "gateway/offline_backlog.hpp"

#include <gtest/gtest.h>

namespace herald::gateway {

TEST(OfflineBacklog, CountsMessagesPerUserUntilTheUserConnects) {
  OfflineBacklog b;
  b.add("alice");
  b.add("alice");
  b.add("bob");
  EXPECT_EQ(b.messages(), 3u);
  EXPECT_EQ(b.users(), 2u);
  b.clear("alice");
  EXPECT_EQ(b.messages(), 1u);
  EXPECT_EQ(b.users(), 1u);
  b.clear("carol");  // never offline: nothing changes
  EXPECT_EQ(b.messages(), 1u);
}

TEST(OfflineBacklog, CountsUsersBeyondItsBoundAsUntrackedOnly) {
  OfflineBacklog b(1);
  b.add("alice");
  b.add("bob");
  b.add("alice");
  EXPECT_EQ(b.messages(), 2u);
  EXPECT_EQ(b.users(), 1u);
  EXPECT_EQ(b.untracked(), 1u);
}

}  // namespace herald::gateway
