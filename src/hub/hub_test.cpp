#include "hub/hub.hpp"
#include "hub/recent_remote_connects.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace herald::hub {
namespace {

class FakeConnection : public LiveConnection {
 public:
  FakeConnection(std::string user, std::string device, AttemptId attempt = {})
      : user_(std::move(user)), device_(std::move(device)), attempt_(attempt) {}
  void notify() override { ++notified; }
  void kick(CloseReason r) override { kicked = r; }
  ConnectionInfo info() const override { return {user_, device_, "c", 0, std::nullopt, 0, 0}; }
  const std::string& user() const override { return user_; }
  const std::string& device() const override { return device_; }
  AttemptId attempt() const override { return attempt_; }
  int notified = 0;
  std::optional<CloseReason> kicked;

 private:
  std::string user_;
  std::string device_;
  AttemptId attempt_;
};

TEST(Hub, NewerConnectionOfADeviceReplacesTheOlder) {
  Hub hub;
  auto a = std::make_shared<FakeConnection>("u1", "d1");
  auto b = std::make_shared<FakeConnection>("u1", "d1");
  EXPECT_EQ(hub.add(a, 16).result, Hub::AddResult::added);
  auto r = hub.add(b, 16);
  EXPECT_EQ(r.result, Hub::AddResult::replaced);
  EXPECT_EQ(r.replaced.get(), a.get());
  EXPECT_EQ(hub.size(), 1u);
  // The replaced connection's late removal must not unregister its successor.
  hub.remove(*a);
  r.replaced.reset();
  a.reset();  // gone: the entry must view b's user string now, not a's (ASan)
  EXPECT_EQ(hub.connections("u1").size(), 1u);
}

TEST(Hub, AStaleAttemptOfTheSameClientDoesNotReplaceItsSuccessor) {
  Hub hub;
  const std::uint64_t s1 = attempt_session_hash("s1");
  auto second = std::make_shared<FakeConnection>("u1", "d1", AttemptId{s1, 2});
  EXPECT_EQ(hub.add(second, 16).result, Hub::AddResult::added);
  // Attempt 1 reaches the hub late, after its client moved on to attempt 2.
  EXPECT_EQ(hub.add(std::make_shared<FakeConnection>("u1", "d1", AttemptId{s1, 1}), 16).result,
            Hub::AddResult::stale);
  ASSERT_EQ(hub.connections("u1").size(), 1u);
  EXPECT_EQ(hub.connections("u1")[0].get(), second.get());
  // Another client instance of the device, or one that sends no attempt, wins as before.
  EXPECT_EQ(hub.add(std::make_shared<FakeConnection>("u1", "d1", AttemptId{attempt_session_hash("s2"), 1}), 16).result,
            Hub::AddResult::replaced);
  EXPECT_EQ(hub.add(std::make_shared<FakeConnection>("u1", "d1"), 16).result, Hub::AddResult::replaced);
  EXPECT_EQ(hub.size(), 1u);
}

TEST(Hub, AConnectionOnAnotherNodeReplacesByAttemptThenByTimeThenByConnId) {
  const AttemptId none{};
  const AttemptId s2{attempt_session_hash("s"), 2}, s3{attempt_session_hash("s"), 3};
  const AttemptId other{attempt_session_hash("o"), 1};
  auto at = [](AttemptId a, std::int64_t ms, std::string id = "c-1") { return ConnectStamp{a, ms, std::move(id)}; };
  // No attempts, or different sessions: the later connect wins.
  EXPECT_TRUE(remote_connection_replaces(at(none, 100), at(none, 200)));
  EXPECT_FALSE(remote_connection_replaces(at(none, 200), at(none, 100)));
  EXPECT_TRUE(remote_connection_replaces(at(s2, 100), at(other, 200)));
  EXPECT_FALSE(remote_connection_replaces(at(s2, 200), at(other, 100)));
  // The same millisecond: the higher conn id stays, as both nodes judge it.
  EXPECT_TRUE(remote_connection_replaces(at(none, 100, "c-a"), at(none, 100, "c-b")));
  EXPECT_FALSE(remote_connection_replaces(at(none, 100, "c-b"), at(none, 100, "c-a")));
  EXPECT_TRUE(remote_connection_replaces(at(s2, 100, "c-a"), at(other, 100, "c-b")));
  // An older node sends no conn id: on a tie its connection wins, as before.
  EXPECT_TRUE(remote_connection_replaces(at(none, 100, "c-b"), at(none, 100, "")));
  // The same session: the attempt number decides, whatever the clocks say.
  EXPECT_TRUE(remote_connection_replaces(at(s2, 200), at(s3, 100)));
  EXPECT_FALSE(remote_connection_replaces(at(s3, 100), at(s2, 200)));
}

TEST(RecentRemoteConnects, AConnectionSetUpWhileTheMessageCameIsJudgedAgainstItForAWhile) {
  RecentRemoteConnects recent;
  const ConnectStamp remote{{}, 1000, "c-r"};
  recent.remember("u", "d", remote, 5000);
  // A local connection made before the remote one (or in its millisecond, with a lower id) loses.
  EXPECT_TRUE(recent.replaced_by_remote("u", "d", {{}, 999, "c-z"}, 5001));
  EXPECT_TRUE(recent.replaced_by_remote("u", "d", {{}, 1000, "c-a"}, 5001));
  EXPECT_FALSE(recent.replaced_by_remote("u", "d", {{}, 1000, "c-z"}, 5001));
  EXPECT_FALSE(recent.replaced_by_remote("u", "d", {{}, 1001, "c-a"}, 5001));
  // Only that device, and only for kKeepMs.
  EXPECT_FALSE(recent.replaced_by_remote("u", "other", {{}, 999, "c-z"}, 5001));
  EXPECT_FALSE(recent.replaced_by_remote("u", "d", {{}, 999, "c-z"}, 5000 + RecentRemoteConnects::kKeepMs + 1));
  recent.remember("u", "x", remote, 5000 + RecentRemoteConnects::kKeepMs + 1);
  EXPECT_EQ(recent.size(), 1u);  // the old entry went with the next remember
}

TEST(RecentRemoteConnects, HoldsAtMostKMaxEntries) {
  RecentRemoteConnects recent;
  for (std::size_t i = 0; i < RecentRemoteConnects::kMaxEntries + 10; ++i) {
    recent.remember("u" + std::to_string(i), "d", {{}, 1, "c"}, 100);
  }
  EXPECT_EQ(recent.size(), RecentRemoteConnects::kMaxEntries);
  EXPECT_FALSE(recent.replaced_by_remote("u0", "d", {{}, 0, "c"}, 100));  // the oldest went
  EXPECT_TRUE(recent.replaced_by_remote("u10", "d", {{}, 0, "c"}, 100));
}

TEST(Hub, RefusesBeyondThePerUserLimitButNotAReplacement) {
  Hub hub;
  EXPECT_EQ(hub.add(std::make_shared<FakeConnection>("u1", "d1"), 2).result, Hub::AddResult::added);
  EXPECT_EQ(hub.add(std::make_shared<FakeConnection>("u1", "d2"), 2).result, Hub::AddResult::added);
  EXPECT_EQ(hub.add(std::make_shared<FakeConnection>("u1", "d3"), 2).result, Hub::AddResult::user_limit);
  EXPECT_EQ(hub.add(std::make_shared<FakeConnection>("u1", "d2"), 2).result, Hub::AddResult::replaced);
  EXPECT_EQ(hub.add(std::make_shared<FakeConnection>("u2", "d1"), 2).result, Hub::AddResult::added);
  EXPECT_EQ(hub.users(), 2u);
}

TEST(Hub, NotifiesEveryDeviceOfTheUserOnly) {
  Hub hub;
  auto a = std::make_shared<FakeConnection>("u1", "d1");
  auto b = std::make_shared<FakeConnection>("u1", "d2");
  auto c = std::make_shared<FakeConnection>("u2", "d1");
  hub.add(a, 16);
  hub.add(b, 16);
  hub.add(c, 16);
  EXPECT_EQ(hub.notify("u1"), 2u);
  EXPECT_EQ(a->notified, 1);
  EXPECT_EQ(b->notified, 1);
  EXPECT_EQ(c->notified, 0);
  EXPECT_EQ(hub.notify("nobody"), 0u);
}

TEST(Hub, ConcurrentAddAndRemoveKeepCountsExact) {
  Hub hub;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&hub, t] {
      for (int i = 0; i < 2000; ++i) {
        auto user = "u" + std::to_string(i % 50);
        auto c = std::make_shared<FakeConnection>(user, "d" + std::to_string(t));
        hub.add(c, 100);
        hub.remove(*c);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(hub.size(), 0u);
  EXPECT_EQ(hub.users(), 0u);
}

}  // namespace
}  // namespace herald::hub
