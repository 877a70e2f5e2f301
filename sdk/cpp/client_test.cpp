#include "herald/client.hpp"

#include <atomic>
#include <random>
#include <thread>
#include <stdexcept>

#include <gtest/gtest.h>

#include "testing/fake_herald_server.hpp"
#include "testing/run_until.hpp"

namespace herald::sdk {
namespace {
using namespace std::chrono_literals;
using testing::FakeConnection;
using testing::FakeHeraldServer;
using testing::make_welcome;
using testing::run_until;

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = std::random_device{}();
    // By default: welcome in epoch e1, nothing else; tests add messages.
    server_.on_open = [](FakeConnection& c) { c.send_welcome(make_welcome("e1")); };
  }

  void TearDown() override {
    for (auto& c : clients_) c->stop();
    for (auto& c : clients_) {
      EXPECT_TRUE(run_until(ioc_, [&] { return c->state() == ClientState::closed; }))
          << "jitter seed " << seed_;
    }
    server_.stop();
  }

  ClientOptions options() {
    ClientOptions o;
    o.url = server_.url();
    o.device = "d1";
    o.token_provider = [this] { return "tok-" + std::to_string(++tokens_); };
    o.backoff_initial = 5ms;
    o.backoff_max = 20ms;
    o.jitter_seed = seed_;
    return o;
  }

  std::shared_ptr<Client> start(ClientOptions o) {
    auto c = Client::create(ioc_.get_executor(), std::move(o));
    c->on_message([this](const Message& m) { messages_.push_back(m); });
    c->on_state([this](ClientState s, const CloseInfo& i) { states_.emplace_back(s, i); });
    c->start();
    clients_.push_back(c);
    return c;
  }

  std::vector<std::uint64_t> seqs() const {
    std::vector<std::uint64_t> out;
    for (const auto& m : messages_) out.push_back(m.seq);
    return out;
  }

  bool saw_state(ClientState s, int code) const {
    for (const auto& [state, info] : states_) {
      if (state == s && info.code == code) return true;
    }
    return false;
  }

  FakeConnection& conn(std::size_t i) { return *server_.connections.at(i); }

  bool wait_connections(std::size_t n) {
    return run_until(ioc_, [&] { return server_.connections.size() >= n; });
  }

  std::uint64_t seed_ = 0;
  boost::asio::io_context ioc_;
  FakeHeraldServer server_{ioc_};
  std::vector<std::shared_ptr<Client>> clients_;
  std::vector<Message> messages_;
  std::vector<std::pair<ClientState, CloseInfo>> states_;
  int tokens_ = 0;
};

TEST_F(ClientTest, HandshakeCarriesBearerTokenDeviceAndSubprotocol) {
  auto client = start(options());
  ASSERT_TRUE(wait_connections(1));
  EXPECT_EQ(conn(0).authorization, "Bearer tok-1");
  EXPECT_EQ(conn(0).subprotocol, "herald.v1");
  EXPECT_EQ(conn(0).query.at("device"), "d1");
  EXPECT_EQ(conn(0).query.count("last_seq"), 0u);
  EXPECT_EQ(conn(0).query.count("epoch"), 0u);
  EXPECT_EQ(conn(0).target.substr(0, 6), "/v1/ws");
  ASSERT_TRUE(run_until(ioc_, [&] { return client->state() == ClientState::open; }));
  EXPECT_EQ(client->epoch(), "e1");
}

TEST_F(ClientTest, ConnectsFromTheLocalAddressItIsGiven) {
  auto o = options();
  o.local_address = "127.0.0.7";
  auto client = start(o);
  ASSERT_TRUE(wait_connections(1));
  boost::system::error_code ec;
  const auto peer = boost::beast::get_lowest_layer(conn(0).ws).socket().remote_endpoint(ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(peer.address().to_string(), "127.0.0.7");
  ASSERT_TRUE(run_until(ioc_, [&] { return client->state() == ClientState::open; }));
}

TEST_F(ClientTest, AnUnusableLocalAddressFailsTheAttemptAndIsRetried) {
  auto o = options();
  o.local_address = "not-an-address";
  auto client = start(o);
  ASSERT_TRUE(run_until(ioc_, [&] {
    for (const auto& [state, info] : states_) {
      if (state == ClientState::waiting_to_reconnect && info.reason.starts_with("local address")) return true;
    }
    return false;
  }));
  EXPECT_TRUE(server_.connections.empty());
}

TEST_F(ClientTest, HandsOutMessagesInOrderAndAcksEachAfterItsHandlerReturns) {
  server_.on_open = [](FakeConnection& c) {
    c.send_welcome(make_welcome("e1"));
    for (std::uint64_t s = 1; s <= 5; ++s) c.send_msg(s, 1, R"({"n":)" + std::to_string(s) + "}");
  };
  auto client = start(options());
  ASSERT_TRUE(run_until(ioc_, [&] {
    return !server_.connections.empty() && conn(0).acknowledged().size() == 5;
  }));
  EXPECT_EQ(seqs(), (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(conn(0).acknowledged(), (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(messages_[2].id, "m-3");
  EXPECT_EQ(messages_[2].event, "test.event");
  EXPECT_EQ(messages_[2].data_json, R"({"n":3})");
  EXPECT_EQ(messages_[2].trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(messages_[2].attempt, 1u);
  EXPECT_EQ(client->last_seq(), 5u);
}

TEST_F(ClientTest, HandlerThatThrowsLeavesItsMessageUnackedAndGetsItAgainAfterReconnect) {
  server_.on_open = [this](FakeConnection& c) {
    c.send_welcome(make_welcome("e1", server_.connections.size() == 1 ? 1 : 2));
    if (server_.connections.size() == 1) {
      c.send_msg(1);
      c.send_msg(2);
    } else {
      c.send_msg(2);
    }
  };
  auto client = Client::create(ioc_.get_executor(), options());
  bool thrown = false;
  client->on_message([&](const Message& m) {
    if (m.seq == 2 && !thrown) {
      thrown = true;
      throw std::runtime_error("application not ready");
    }
    messages_.push_back(m);
  });
  client->start();
  clients_.push_back(client);
  ASSERT_TRUE(wait_connections(2));
  ASSERT_TRUE(run_until(ioc_, [&] { return messages_.size() == 2; }));
  EXPECT_EQ(seqs(), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(conn(0).acked_seqs(), (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(conn(1).query.at("last_seq"), "1");
}

TEST_F(ClientTest, DuplicateSeqIsAckedAgainButNotHandedOut) {
  server_.on_open = [](FakeConnection& c) {
    c.send_welcome(make_welcome("e1"));
    c.send_msg(1);
    c.send_msg(2);
  };
  auto client = start(options());
  ASSERT_TRUE(run_until(ioc_, [&] {
    return !server_.connections.empty() && conn(0).acknowledged().size() == 2;
  }));
  // Each redelivery of a processed seq, alone on the wire, is acked again by seq.
  for (std::uint64_t dup : {2, 1}) {
    const auto frames = conn(0).ack_frames();
    conn(0).send_msg(dup, 2);
    ASSERT_TRUE(run_until(ioc_, [&] { return conn(0).ack_frames() == frames + 1; }));
    EXPECT_EQ(conn(0).acked_seqs().back(), dup);
  }
  conn(0).send_msg(3);
  ASSERT_TRUE(run_until(ioc_, [&] { return conn(0).acknowledged().size() == 3; }));
  EXPECT_EQ(seqs(), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(conn(0).acknowledged(), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(client->duplicates(), 2u);
}

TEST_F(ClientTest, AcksABurstWithOneFramePerAckBatchThatCoversEveryMessage) {
  constexpr std::uint64_t count = 500;
  server_.on_open = [](FakeConnection& c) {
    c.send_welcome(make_welcome("e1"));
    for (std::uint64_t s = 1; s <= count; ++s) c.send_msg(s);
  };
  auto o = options();
  o.ack_interval = 300ms;  // longer than the burst takes: the batch size paces the frames
  o.ack_batch = 32;
  auto client = start(o);
  ASSERT_TRUE(run_until(ioc_, [&] { return messages_.size() == count; }));
  ASSERT_TRUE(run_until(ioc_, [&] { return conn(0).acknowledged().size() == count; }));
  EXPECT_EQ(messages_.size(), count);
  // The first message at once, then one frame per 32, the rest at the interval's
  // end (a slow machine may see an interval or two pass during the burst).
  EXPECT_LE(conn(0).ack_frames(), 1 + count / 32 + 3);
  for (auto upto : conn(0).acked_upto()) EXPECT_LE(upto, count);
  EXPECT_EQ(client->last_seq(), count);
}

TEST_F(ClientTest, AcksLeftBelowTheBatchGoOutWhenTheIntervalEnds) {
  server_.on_open = [](FakeConnection& c) {
    c.send_welcome(make_welcome("e1"));
    for (std::uint64_t s = 1; s <= 4; ++s) c.send_msg(s);
  };
  auto o = options();
  o.ack_interval = 50ms;
  o.ack_batch = 32;
  auto client = start(o);
  ASSERT_TRUE(run_until(ioc_, [&] { return messages_.size() == 4; }));
  ASSERT_TRUE(run_until(ioc_, [&] { return conn(0).acknowledged().size() == 4; }));
  // The first by seq at once; 2-4 gathered into one `ack upto` when the interval ended.
  EXPECT_EQ(conn(0).acked_seqs(), (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(conn(0).acked_upto(), (std::vector<std::uint64_t>{4}));
}

TEST_F(ClientTest, ReconnectsAfterTheSocketDiesAndResumesWithLastSeqAndEpoch) {
  server_.on_open = [this](FakeConnection& c) {
    c.send_welcome(make_welcome("e1", server_.connections.size() == 1 ? 1 : 4));
    if (server_.connections.size() == 1) {
      for (std::uint64_t s = 1; s <= 3; ++s) c.send_msg(s);
    }
  };
  auto client = start(options());
  ASSERT_TRUE(run_until(ioc_, [&] {
    return !server_.connections.empty() && conn(0).acknowledged().size() == 3;
  }));
  conn(0).drop();
  ASSERT_TRUE(wait_connections(2));
  EXPECT_EQ(conn(1).query.at("last_seq"), "3");
  EXPECT_EQ(conn(1).query.at("epoch"), "e1");
  EXPECT_EQ(conn(1).query.at("device"), "d1");
  EXPECT_EQ(conn(1).authorization, "Bearer tok-2");  // the provider is asked before every connect
  ASSERT_TRUE(run_until(ioc_, [&] { return client->reconnects() == 1; }));
  EXPECT_TRUE(saw_state(ClientState::waiting_to_reconnect, 0));
  EXPECT_EQ(client->state(), ClientState::open);
}

TEST_F(ClientTest, ReconnectsAfterCloseCode4008AndReportsIt) {
  auto client = start(options());
  ASSERT_TRUE(run_until(ioc_, [&] { return client->state() == ClientState::open; }));
  conn(0).close(4008, "unresponsive");
  ASSERT_TRUE(wait_connections(2));
  ASSERT_TRUE(run_until(ioc_, [&] { return client->reconnects() == 1; }));
  ASSERT_TRUE(saw_state(ClientState::waiting_to_reconnect, 4008));
  for (const auto& [s, info] : states_) {
    if (info.code == 4008) {
      EXPECT_EQ(info.reason, "unresponsive");
    }
  }
}

TEST_F(ClientTest, AsksTheTokenProviderForANewTokenAfterCloseCode4001) {
  auto client = start(options());
  ASSERT_TRUE(run_until(ioc_, [&] { return client->state() == ClientState::open; }));
  conn(0).close(4001, "token expired");
  ASSERT_TRUE(wait_connections(2));
  EXPECT_EQ(conn(0).authorization, "Bearer tok-1");
  EXPECT_EQ(conn(1).authorization, "Bearer tok-2");
  EXPECT_TRUE(saw_state(ClientState::waiting_to_reconnect, 4001));
}

class ClientNoReconnectTest : public ClientTest, public ::testing::WithParamInterface<int> {};

TEST_P(ClientNoReconnectTest, DoesNotReconnectAfterThisCloseCode) {
  auto client = start(options());
  ASSERT_TRUE(run_until(ioc_, [&] { return client->state() == ClientState::open; }));
  conn(0).close(GetParam(), "bye");
  ASSERT_TRUE(run_until(ioc_, [&] { return client->state() == ClientState::closed; }));
  ioc_.restart();
  ioc_.poll();
  EXPECT_EQ(server_.connections.size(), 1u);
  ASSERT_FALSE(states_.empty());
  EXPECT_EQ(states_.back().first, ClientState::closed);
  EXPECT_EQ(states_.back().second.code, GetParam());
  EXPECT_FALSE(saw_state(ClientState::waiting_to_reconnect, GetParam()));
}

TEST_P(ClientNoReconnectTest, KeepsTheCodeOfACloseFrameWhoseReplyCannotBeSent) {
  // A server that sends its close and closes the socket before the client reads
  // the frame: answering fails, yet the code is what the server said.
  auto client = start(options());
  ASSERT_TRUE(run_until(ioc_, [&] { return client->state() == ClientState::open; }));
  conn(0).close_and_vanish(GetParam(), "bye");
  ASSERT_TRUE(run_until(ioc_, [&] { return client->state() == ClientState::closed; }));
  EXPECT_EQ(server_.connections.size(), 1u);
  EXPECT_EQ(states_.back().second.code, GetParam());
  EXPECT_EQ(states_.back().second.reason, "bye");
}

INSTANTIATE_TEST_SUITE_P(KickedAndReplaced, ClientNoReconnectTest, ::testing::Values(4010, 4011));

TEST_F(ClientTest, RefusedUpgradeIsReportedWithItsHttpStatusAndRetried) {
  const std::string body = R"({"error":{"code":"draining","message":"draining"}})";
  server_.refuse_next(503, body, 2);
  auto client = start(options());
  ASSERT_TRUE(run_until(ioc_, [&] { return client->state() == ClientState::open; }));
  EXPECT_EQ(server_.refused, 2);
  ASSERT_TRUE(saw_state(ClientState::waiting_to_reconnect, 503));
  for (const auto& [s, info] : states_) {
    if (info.code == 503) {
      EXPECT_EQ(info.reason, body);
    }
  }
  EXPECT_EQ(conn(0).authorization, "Bearer tok-3");
}

TEST_F(ClientTest, GoingAwayWaitsAtMostTheRetryAfterOfTheCloseReason) {
  auto o = options();
  o.backoff_max = 60s;  // without retry_after the wait would be drawn from 0..60 s
  auto client = start(o);
  ASSERT_TRUE(run_until(ioc_, [&] { return client->state() == ClientState::open; }));
  conn(0).close(1001, "draining; retry_after=30");
  ASSERT_TRUE(wait_connections(2)) << "jitter seed " << seed_;
  EXPECT_TRUE(saw_state(ClientState::waiting_to_reconnect, 1001));
}

TEST_F(ClientTest, AfterGoingAwayNoRetryWaitsLongerThanTheRetryAfterUntilAWelcome) {
  auto o = options();
  o.backoff_initial = 10s;  // the usual backoff would wait seconds after the first refusal
  o.backoff_max = 60s;
  auto client = start(o);
  ASSERT_TRUE(run_until(ioc_, [&] { return client->state() == ClientState::open; }));
  // The server drains, then is not back for a few attempts (PROTOCOL.md 6).
  server_.refuse_next(503, R"({"error":{"code":"draining","message":"draining"}})", 4);
  conn(0).close(1001, "draining; retry_after=30");
  ASSERT_TRUE(wait_connections(2)) << "jitter seed " << seed_;
  EXPECT_EQ(server_.refused, 4);
  ASSERT_TRUE(run_until(ioc_, [&] { return client->state() == ClientState::open; }));
}

// Runs the io_context for `d`, whatever happens.
void run_for(boost::asio::io_context& ioc, std::chrono::milliseconds d) {
  run_until(ioc, [] { return false; }, d);
}

TEST_F(ClientTest, AServerThatClosesRightAfterItsWelcomeSeesTheBackoffGrow) {
  // A welcome no longer resets the backoff; a connection that lasted
  // backoff_reset_after does. Before, every wait was drawn from [0, 5 ms].
  server_.on_open = [](FakeConnection& c) {
    c.send_welcome(make_welcome("e1"));
    c.close(4008, "unresponsive");
  };
  auto o = options();
  o.backoff_max = 400ms;
  auto client = start(o);
  run_for(ioc_, 1500ms);
  // Expected ~13 (caps 5, 10, 20, ... 400 ms, each wait uniform below its cap).
  EXPECT_GE(server_.connections.size(), 3u);
  EXPECT_LT(server_.connections.size(), 40u) << "jitter seed " << seed_;
}

TEST_F(ClientTest, ARetryAfterOfZeroDoesNotMakeALoopOfAttempts) {
  auto o = options();
  o.backoff_initial = 200ms;
  o.backoff_max = 10s;
  auto client = start(o);
  ASSERT_TRUE(run_until(ioc_, [&] { return client->state() == ClientState::open; }));
  server_.refuse_next(503, R"({"error":{"code":"draining","message":"draining"}})", 100000);
  conn(0).close(1001, "retry_after=0");
  run_for(ioc_, 1000ms);
  // Waits drawn from [0, 100 ms] after the first: ~20 attempts, not thousands.
  EXPECT_GE(server_.refused, 2);
  EXPECT_LT(server_.refused, 80) << "jitter seed " << seed_;
}

TEST_F(ClientTest, HeartbeatPingsCarryIdAndTsAndRttComesFromThePong) {
  auto o = options();
  o.heartbeat = 20ms;
  auto client = start(o);
  ASSERT_TRUE(run_until(ioc_, [&] { return client->last_rtt().has_value(); }));
  const auto pings = conn(0).pings();
  ASSERT_FALSE(pings.empty());
  EXPECT_GT(std::stoll(pings[0].id_json), 0);
  EXPECT_GT(std::stoll(pings[0].ts_json), 1700000000000);  // unix ms
  EXPECT_LT(*client->last_rtt(), std::chrono::microseconds(5s));
}

TEST_F(ClientTest, UsesTheWelcomeHeartbeatWhenNoneIsConfigured) {
  server_.on_open = [](FakeConnection& c) { c.send_welcome(make_welcome("e1", 1, 20)); };
  auto client = start(options());
  ASSERT_TRUE(run_until(ioc_, [&] { return client->last_rtt().has_value(); }));
  EXPECT_FALSE(conn(0).pings().empty());
}

TEST_F(ClientTest, SilentServerIsDroppedAfterTwoHeartbeatIntervals) {
  server_.on_open = [this](FakeConnection& c) {
    c.answer_pings = server_.connections.size() > 1;
    c.send_welcome(make_welcome("e1"));
  };
  auto o = options();
  o.heartbeat = 20ms;
  auto client = start(o);
  ASSERT_TRUE(wait_connections(2));
  ASSERT_TRUE(saw_state(ClientState::waiting_to_reconnect, 0));
  bool heartbeat_reason = false;
  for (const auto& [s, info] : states_) {
    heartbeat_reason = heartbeat_reason || info.reason.find("heartbeat") != std::string::npos;
  }
  EXPECT_TRUE(heartbeat_reason);
}

TEST_F(ClientTest, NoWelcomeWithinConnectTimeoutIsARetriedFailure) {
  server_.on_open = [this](FakeConnection& c) {
    if (server_.connections.size() > 1) c.send_welcome(make_welcome("e1"));
  };
  auto o = options();
  o.connect_timeout = 50ms;
  auto client = start(o);
  ASSERT_TRUE(run_until(ioc_, [&] { return client->state() == ClientState::open; }));
  EXPECT_EQ(server_.connections.size(), 2u);
  EXPECT_TRUE(saw_state(ClientState::waiting_to_reconnect, 0));
}

TEST_F(ClientTest, StopFlushesAcksThenClosesWith1000AndDoesNotReconnect) {
  server_.on_open = [](FakeConnection& c) {
    c.send_welcome(make_welcome("e1"));
    c.send_msg(1);
  };
  auto client = start(options());
  ASSERT_TRUE(run_until(ioc_, [&] { return messages_.size() == 1; }));
  client->stop();
  ASSERT_TRUE(run_until(ioc_, [&] { return client->state() == ClientState::closed; }));
  ASSERT_TRUE(run_until(ioc_, [&] { return conn(0).ended; }));
  EXPECT_EQ(conn(0).client_close_code, 1000);
  EXPECT_EQ(conn(0).acked_seqs(), (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(states_.back().second.code, 1000);
  ioc_.restart();
  ioc_.poll();
  EXPECT_EQ(server_.connections.size(), 1u);
}

TEST_F(ClientTest, StopSendsTheAcksThatWaitForTheIntervalBeforeClosing) {
  server_.on_open = [](FakeConnection& c) {
    c.send_welcome(make_welcome("e1"));
    for (std::uint64_t s = 1; s <= 3; ++s) c.send_msg(s);
  };
  auto o = options();
  o.ack_interval = 60s;  // only stop() can send 2 and 3
  auto client = start(o);
  ASSERT_TRUE(run_until(ioc_, [&] { return messages_.size() == 3; }));
  client->stop();
  ASSERT_TRUE(run_until(ioc_, [&] { return !server_.connections.empty() && conn(0).ended; }));
  EXPECT_EQ(conn(0).client_close_code, 1000);
  EXPECT_EQ(conn(0).acknowledged(), (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST_F(ClientTest, StopCutsTheSocketAfterCloseTimeoutWhenTheServerNeverAnswersTheClose) {
  server_.on_open = [](FakeConnection& c) {
    c.stop_reading = true;  // reads the client's ack of 1, then nothing more
    c.send_welcome(make_welcome("e1"));
    c.send_msg(1);
  };
  auto o = options();
  o.connect_timeout = 60s;  // the close waited for this before
  o.close_timeout = 200ms;
  auto client = start(o);
  ASSERT_TRUE(wait_connections(1));
  ASSERT_TRUE(run_until(ioc_, [&] { return conn(0).acked_seqs().size() == 1; }));
  client->stop();
  ASSERT_TRUE(run_until(ioc_, [&] { return client->state() == ClientState::closed; }));
  EXPECT_EQ(states_.back().second.code, 1000);
  EXPECT_NE(states_.back().second.reason.find("close_timeout"), std::string::npos);
  ioc_.restart();
  ioc_.poll();
  EXPECT_EQ(server_.connections.size(), 1u);
}

TEST_F(ClientTest, StartRightAfterStopConnectsAgainOnceTheCloseEnds) {
  auto client = start(options());
  ASSERT_TRUE(run_until(ioc_, [&] { return client->state() == ClientState::open; }));
  client->stop();
  client->start();
  ASSERT_TRUE(run_until(ioc_, [&] {
    return server_.connections.size() == 2 && client->state() == ClientState::open;
  }));
  EXPECT_TRUE(conn(0).ended);
  EXPECT_EQ(conn(0).client_close_code, 1000);
  EXPECT_TRUE(saw_state(ClientState::closed, 1000));
  // stop(), start(), stop(): the last word holds.
  client->stop();
  client->start();
  client->stop();
  ASSERT_TRUE(run_until(ioc_, [&] { return client->state() == ClientState::closed; }));
  ioc_.restart();
  ioc_.poll();
  EXPECT_EQ(server_.connections.size(), 2u);
}

TEST_F(ClientTest, SameEpochKeepsDedupAcrossReconnects) {
  server_.on_open = [this](FakeConnection& c) {
    if (server_.connections.size() == 1) {
      c.send_welcome(make_welcome("e1", 1));
      for (std::uint64_t s = 1; s <= 3; ++s) c.send_msg(s);
    } else {
      auto w = make_welcome("e1", 2);  // the server's cursor is behind
      w.head_seq = 4;
      c.send_welcome(w);
      for (std::uint64_t s = 2; s <= 4; ++s) c.send_msg(s);
    }
  };
  auto client = start(options());
  ASSERT_TRUE(run_until(ioc_, [&] {
    return !server_.connections.empty() && conn(0).acknowledged().size() == 3;
  }));
  conn(0).drop();
  ASSERT_TRUE(wait_connections(2));
  ASSERT_TRUE(run_until(ioc_, [&] { return conn(1).acknowledged().size() == 3; }));
  EXPECT_EQ(seqs(), (std::vector<std::uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(conn(1).acknowledged(), (std::vector<std::uint64_t>{2, 3, 4}));
  EXPECT_EQ(client->duplicates(), 2u);
}

TEST_F(ClientTest, AnInboxThatLostItsTailInTheSameEpochHasItsNewMessagesHandedOut) {
  // The client processed up to 10; the store came back from a backup at
  // head 5, same epoch: 6, 7 are new messages, not duplicates.
  server_.on_open = [](FakeConnection& c) {
    c.send_welcome(make_welcome("e1", 6));
    c.send_msg(6);
    c.send_msg(7);
  };
  auto o = options();
  o.last_seq = 10;
  o.epoch = "e1";
  auto client = start(o);
  ASSERT_TRUE(run_until(ioc_, [&] { return messages_.size() == 2; })) << "duplicates " << client->duplicates();
  EXPECT_EQ(seqs(), (std::vector<std::uint64_t>{6, 7}));
  EXPECT_EQ(client->duplicates(), 0u);
  EXPECT_EQ(client->last_seq(), 7u);
}

TEST_F(ClientTest, NewEpochMeansSeqsStartedAgainAndTheyAreHandedOut) {
  server_.on_open = [](FakeConnection& c) {
    c.send_welcome(make_welcome("new", 1));
    c.send_msg(1);
    c.send_msg(2);
  };
  auto o = options();
  o.last_seq = 10;
  o.epoch = "old";
  auto client = start(o);
  ASSERT_TRUE(run_until(ioc_, [&] { return messages_.size() == 2; }));
  EXPECT_EQ(conn(0).query.at("last_seq"), "10");
  EXPECT_EQ(conn(0).query.at("epoch"), "old");
  EXPECT_EQ(seqs(), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(client->last_seq(), 2u);
  EXPECT_EQ(client->epoch(), "new");
}

TEST_F(ClientTest, WithoutAutoAckNothingIsAckedUntilTheApplicationAcks) {
  server_.on_open = [](FakeConnection& c) {
    c.send_welcome(make_welcome("e1"));
    for (std::uint64_t s = 1; s <= 3; ++s) c.send_msg(s);
    c.send_msg(2, 2);
  };
  auto o = options();
  o.auto_ack = false;
  auto client = start(o);
  ASSERT_TRUE(run_until(ioc_, [&] { return client->duplicates() == 1; }));
  EXPECT_EQ(seqs(), (std::vector<std::uint64_t>{1, 2, 3}));
  client->ack(2);
  client->ack_upto(3);
  ASSERT_TRUE(run_until(ioc_, [&] { return conn(0).acked_upto().size() == 1; }));
  EXPECT_EQ(conn(0).acked_seqs(), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(conn(0).acked_upto(), (std::vector<std::uint64_t>{3}));
}

TEST_F(ClientTest, SendTextAndRefreshGoOutAsFramesAndRawFramesAreSeen) {
  auto client = Client::create(ioc_.get_executor(), options());
  std::vector<std::string> raw;
  std::vector<protocol::ErrorFrame> errors;
  client->on_raw_frame([&](std::string_view t) { raw.emplace_back(t); });
  client->on_error_frame([&](const protocol::ErrorFrame& e) { errors.push_back(e); });
  client->on_state([&](ClientState s, const CloseInfo&) {
    if (s == ClientState::open) {
      client->send_text(R"({"type":"hello"})");
      client->refresh("tok-new");
    }
  });
  client->start();
  clients_.push_back(client);
  ASSERT_TRUE(run_until(ioc_, [&] { return !server_.connections.empty() && conn(0).received.size() == 2; }));
  EXPECT_EQ(conn(0).received[0], R"({"type":"hello"})");
  EXPECT_EQ(conn(0).received[1], R"({"type":"refresh","token":"tok-new"})");
  conn(0).send(R"({"type":"error","code":"unknown_type","message":"unknown frame type: hello"})");
  ASSERT_TRUE(run_until(ioc_, [&] { return errors.size() == 1; }));
  EXPECT_EQ(errors[0].code, "unknown_type");
  ASSERT_EQ(raw.size(), 2u);
  EXPECT_NE(raw[0].find("welcome"), std::string::npos);
}

TEST_F(ClientTest, ManyClientsShareOneIoContext) {
  constexpr int client_count = 50;
  server_.on_open = [](FakeConnection& c) {
    c.send_welcome(make_welcome("e1"));
    for (std::uint64_t s = 1; s <= 3; ++s) c.send_msg(s);
  };
  for (int i = 0; i < client_count; ++i) {
    auto o = options();
    o.device = "d" + std::to_string(i);
    start(o);
  }
  ASSERT_TRUE(run_until(ioc_, [&] {
    if (server_.connections.size() < client_count) return false;
    for (auto& c : server_.connections) {
      if (c->acknowledged().size() < 3) return false;
    }
    return true;
  }));
  EXPECT_EQ(messages_.size(), 3u * client_count);
  for (auto& c : clients_) EXPECT_EQ(c->last_seq(), 3u);
}

TEST(ClientThreads, HandlersRunOneAtATimeWhenTheIoContextHasSeveralThreads) {
  boost::asio::io_context server_ioc;  // driven by this thread only
  FakeHeraldServer server(server_ioc);
  server.on_open = [](FakeConnection& c) {
    c.send_welcome(make_welcome("e1"));
    for (std::uint64_t s = 1; s <= 50; ++s) c.send_msg(s);
  };
  boost::asio::io_context client_ioc;
  auto guard = boost::asio::make_work_guard(client_ioc);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) threads.emplace_back([&] { client_ioc.run(); });

  constexpr int client_count = 8;
  std::atomic<int> handled{0};
  std::atomic<bool> overlap{false};
  std::vector<std::shared_ptr<Client>> clients;
  std::vector<std::unique_ptr<std::atomic<bool>>> inside;
  for (int i = 0; i < client_count; ++i) {
    ClientOptions o;
    o.url = server.url();
    o.device = "d" + std::to_string(i);
    auto c = Client::create(client_ioc.get_executor(), o);
    auto& flag = *inside.emplace_back(std::make_unique<std::atomic<bool>>(false));
    c->on_message([&](const Message&) {
      if (flag.exchange(true)) overlap = true;
      ++handled;
      flag = false;
    });
    c->start();
    clients.push_back(c);
  }
  EXPECT_TRUE(run_until(server_ioc, [&] { return handled.load() == 50 * client_count; }));
  EXPECT_TRUE(run_until(server_ioc, [&] {
    for (auto& c : server.connections) {
      if (c->acknowledged().size() < 50) return false;
    }
    return server.connections.size() == client_count;
  }));
  EXPECT_FALSE(overlap.load());
  for (auto& c : clients) c->stop();
  EXPECT_TRUE(run_until(server_ioc, [&] {
    for (auto& c : clients) {
      if (c->state() != ClientState::closed) return false;
    }
    return true;
  }));
  guard.reset();
  for (auto& t : threads) t.join();
}

TEST_F(ClientTest, ATokenProviderThatThrowsAnythingFailsTheAttemptAndIsAskedAgain) {
  auto o = options();
  int asked = 0;
  o.token_provider = [&asked]() -> std::string {
    if (++asked == 1) throw 42;  // not a std::exception
    return "tok";
  };
  auto client = start(o);
  ASSERT_TRUE(run_until(ioc_, [&] { return client->state() == ClientState::open; }));
  EXPECT_EQ(asked, 2);
  EXPECT_EQ(conn(0).authorization, "Bearer tok");
}

TEST(ClientCreate, RefusesAUrlItCannotConnectTo) {
  boost::asio::io_context ioc;
  ClientOptions o;
  o.url = "ws://127.0.0.1:99999/v1/ws";
  EXPECT_THROW(Client::create(ioc.get_executor(), o), std::invalid_argument);
  o.url = "wss://example.com/v1/ws";
  EXPECT_THROW(Client::create(ioc.get_executor(), o), std::invalid_argument);
  o.url = "not a url";
  EXPECT_THROW(Client::create(ioc.get_executor(), o), std::invalid_argument);
}

}  // namespace
}  // namespace herald::sdk
