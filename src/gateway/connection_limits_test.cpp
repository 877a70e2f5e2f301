#include "gateway/connection_limits.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace herald::gateway {
namespace {

using Admit = ConnectionLimits::Admit;

TEST(ConnectionLimits, CountsPerAddressAndInTotalUntilEachTicketIsReleased) {
  ConnectionLimits limits(/*max_total=*/3, /*max_per_ip=*/2);
  auto a1 = limits.acquire("10.0.0.1");
  auto a2 = limits.acquire("10.0.0.1");
  ASSERT_EQ(a1.admit, Admit::ok);
  ASSERT_EQ(a2.admit, Admit::ok);
  EXPECT_TRUE(a1.ticket.valid());
  EXPECT_EQ(limits.acquire("10.0.0.1").admit, Admit::ip_limit);
  auto b = limits.acquire("10.0.0.2");
  ASSERT_EQ(b.admit, Admit::ok);
  EXPECT_EQ(limits.acquire("10.0.0.3").admit, Admit::global_limit);
  EXPECT_EQ(limits.total(), 3u);

  limits.release(a1.ticket);
  EXPECT_FALSE(a1.ticket.valid());
  limits.release(a1.ticket);  // a released ticket gives nothing back twice
  EXPECT_EQ(limits.count("10.0.0.1"), 1u);
  EXPECT_EQ(limits.total(), 2u);
  limits.release(a2.ticket);
  limits.release(b.ticket);
  EXPECT_EQ(limits.count("10.0.0.1"), 0u);
  EXPECT_EQ(limits.total(), 0u);
  EXPECT_EQ(limits.acquire("10.0.0.3").admit, Admit::ok);
}

// A ticket points at its address's entry: entries for many other addresses
// (which rehash the map) must not move it.
TEST(ConnectionLimits, TicketsSurviveTheMapGrowing) {
  ConnectionLimits limits(100000, 4);
  auto first = limits.acquire("192.168.0.1");
  std::vector<ConnectionLimits::Ticket> others;
  for (int i = 0; i < 5000; ++i) others.push_back(limits.acquire("10.1." + std::to_string(i)).ticket);
  EXPECT_EQ(limits.count("192.168.0.1"), 1u);
  limits.release(first.ticket);
  EXPECT_EQ(limits.count("192.168.0.1"), 0u);
  for (auto& t : others) limits.release(t);
  EXPECT_EQ(limits.total(), 0u);
}

}  // namespace
}  // namespace herald::gateway
