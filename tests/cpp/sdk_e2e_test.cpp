// The C++ SDK against the real `herald serve` (issue: gateway core, tests).
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "herald/client.hpp"
#include "herald/http_api.hpp"
#include "server_process.hpp"
#include "testing/run_until.hpp"

namespace herald {
namespace {
using namespace std::chrono_literals;
using sdk::testing::run_until;
using testing::ServerProcess;

sdk::HttpResponse publish(const ServerProcess& s, const std::string& user, const std::string& data) {
  boost::json::object body{{"user", user}, {"data", boost::json::parse(data)}};
  return sdk::http_request("POST", s.url(), "/v1/publish", testing::kTestApiKey, boost::json::serialize(body));
}

std::shared_ptr<sdk::Client> make_client(boost::asio::io_context& ioc, const ServerProcess& s,
                                         const std::string& user, const std::string& device) {
  sdk::ClientOptions o;
  o.url = s.ws_url();
  o.device = device;
  o.token_provider = [&s, user] { return s.token(user); };
  o.backoff_initial = 50ms;
  o.backoff_max = 500ms;
  return sdk::Client::create(ioc.get_executor(), o);
}

TEST(SdkEndToEnd, ReceivesEveryPublishedMessageInOrderAndAcksIt) {
  ServerProcess server;
  server.start();
  boost::asio::io_context ioc;
  auto client = make_client(ioc, server, "alice", "phone");
  std::vector<std::uint64_t> seqs;
  bool welcomed = false;
  client->on_welcome([&](const protocol::WelcomeFrame&) { welcomed = true; });
  client->on_message([&](const sdk::Message& m) { seqs.push_back(m.seq); });
  client->start();
  ASSERT_TRUE(run_until(ioc, [&] { return welcomed; }));
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(publish(server, "alice", "{\"i\":" + std::to_string(i) + "}").status, 200);
  }
  ASSERT_TRUE(run_until(ioc, [&] { return seqs.size() == 50; }, 10s));
  for (std::size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], i + 1);
  // Acks reach the server: the last message ends acked.
  bool acked = false;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!acked && std::chrono::steady_clock::now() < deadline) {
    ioc.restart();
    ioc.run_for(50ms);
    auto r = sdk::http_request("GET", server.url(), "/v1/users/alice/messages/50", testing::kTestApiKey);
    acked = boost::json::parse(r.body).as_object().at("state") == "acked";
  }
  EXPECT_TRUE(acked);
  EXPECT_EQ(client->duplicates(), 0u);
  client->stop();
}

TEST(SdkEndToEnd, MeasuresRttAndStopsReconnectingWhenReplaced) {
  ServerProcess server;
  server.start();
  boost::asio::io_context ioc;
  auto first = make_client(ioc, server, "bob", "tablet");
  int first_close = 0;
  first->on_state([&](sdk::ClientState s, const sdk::CloseInfo& c) {
    if (s == sdk::ClientState::closed || s == sdk::ClientState::waiting_to_reconnect) first_close = c.code;
  });
  first->start();
  ASSERT_TRUE(run_until(ioc, [&] { return first->state() == sdk::ClientState::open; }));
  first->send_text(R"({"type":"ping","id":1,"ts":1})");
  auto second = make_client(ioc, server, "bob", "tablet");
  second->start();
  ASSERT_TRUE(run_until(ioc, [&] { return first_close == 4011; }));
  ASSERT_TRUE(run_until(ioc, [&] { return second->state() == sdk::ClientState::open; }));
  // The replaced client stays down; the new one keeps the device.
  ioc.restart();
  ioc.run_for(500ms);
  EXPECT_EQ(first->state(), sdk::ClientState::closed);
  EXPECT_EQ(second->state(), sdk::ClientState::open);
  second->stop();
}

TEST(SdkEndToEnd, ReconnectsAfterTheServerClosesAndResumesWithoutDuplicates) {
  // An ack timeout of 200 ms with one attempt: a message the client leaves
  // unacked makes the server close 4008; the client reconnects and resumes.
  ServerProcess server({{"HERALD_ACK_TIMEOUT_MS", "200"}, {"HERALD_MAX_ATTEMPTS", "1"}});
  server.start();
  boost::asio::io_context ioc;
  sdk::ClientOptions o;
  o.url = server.ws_url();
  o.device = "d";
  o.token_provider = [&server] { return server.token("cy"); };
  o.backoff_initial = 20ms;
  o.backoff_max = 200ms;
  o.auto_ack = false;
  auto client = sdk::Client::create(ioc.get_executor(), o);
  std::vector<std::uint64_t> seqs;
  client->on_message([&](const sdk::Message& m) {
    seqs.push_back(m.seq);
    if (m.seq != 3 || client->reconnects() > 0) client->ack(m.seq);  // withhold seq 3 once
  });
  client->start();
  ASSERT_TRUE(run_until(ioc, [&] { return client->state() == sdk::ClientState::open; }));
  for (int i = 0; i < 5; ++i) ASSERT_EQ(publish(server, "cy", std::to_string(i)).status, 200);
  ASSERT_TRUE(run_until(ioc, [&] { return client->reconnects() >= 1 && seqs.size() >= 5; }, 10s));
  ioc.restart();
  ioc.run_for(300ms);
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  client->stop();
}

}  // namespace
}  // namespace herald
