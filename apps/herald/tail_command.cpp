#include "tail_command.hpp"

#include <csignal>
#include <iostream>
#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "herald/client.hpp"
#include "protocol/frame_codec.hpp"

namespace herald::cli {
namespace {

// {"seq","id","event","data","ts","attempt","trace_id"}; data is the publisher's JSON
// text as received, so exact integers stay exact (PROTOCOL.md 10).
std::string message_line(const sdk::Message& m) {
  std::string line = R"({"seq":)" + std::to_string(m.seq);
  line += R"(,"id":)" + protocol::json_quote(m.id);
  line += R"(,"event":)" + protocol::json_quote(m.event);
  line += R"(,"data":)";
  line += m.data_json.empty() ? std::string("null") : m.data_json;
  line += R"(,"ts":)" + std::to_string(m.ts);
  line += R"(,"attempt":)" + std::to_string(m.attempt);
  line += R"(,"trace_id":)" + protocol::json_quote(m.trace_id);
  line += '}';
  return line;
}

std::string describe(const sdk::CloseInfo& info) {
  if (info.code == 0 && info.reason.empty()) return {};
  return " (code " + std::to_string(info.code) + (info.reason.empty() ? "" : ": " + info.reason) + ")";
}

}  // namespace

int run_tail(const TailOptions& opts) {
  boost::asio::io_context ioc;
  sdk::ClientOptions co;
  co.url = opts.url;
  co.token_provider = [token = opts.token] { return token; };
  co.device = opts.device;
  co.last_seq = opts.last_seq;
  co.epoch = opts.epoch;
  co.auto_ack = !opts.no_ack;

  std::shared_ptr<sdk::Client> client;
  try {
    client = sdk::Client::create(ioc.get_executor(), co);
  } catch (const std::invalid_argument& e) {
    std::cerr << "herald tail: " << e.what() << '\n';
    return 2;
  }

  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  int signals_seen = 0;
  std::function<void()> await_signal = [&] {
    signals.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      // The first signal closes cleanly; a second one does not wait for the server.
      if (++signals_seen == 1) {
        client->stop();
        await_signal();
      } else {
        ioc.stop();
      }
    });
  };
  await_signal();

  std::size_t handed_out = 0;
  const bool bounded = opts.count > 0;
  if (opts.raw) {
    client->on_raw_frame([&](std::string_view text) { std::cout << text << std::endl; });
  }
  client->on_message([&](const sdk::Message& m) {
    if (bounded && handed_out >= opts.count) return;
    if (!opts.raw) std::cout << message_line(m) << std::endl;
    if (bounded && ++handed_out == opts.count) client->stop();  // the ack goes out first
  });
  client->on_welcome([](const protocol::WelcomeFrame& w) {
    std::cerr << "herald tail: welcome user=" << w.user << " device=" << w.device
              << " epoch=" << w.epoch << " resume_from=" << w.resume_from
              << " head_seq=" << w.head_seq << " recovered=" << (w.recovered ? "true" : "false")
              << '\n';
  });
  client->on_error_frame([](const protocol::ErrorFrame& e) {
    std::cerr << "herald tail: error frame " << e.code << ": " << e.message << '\n';
  });
  client->on_state([&](sdk::ClientState s, const sdk::CloseInfo& info) {
    std::cerr << "herald tail: " << sdk::to_string(s) << describe(info) << '\n';
    if (s == sdk::ClientState::closed) signals.cancel();
  });

  client->start();
  ioc.run();
  std::cerr << "herald tail: last_seq=" << client->last_seq() << " epoch=" << client->epoch() << '\n';
  return 0;
}

}  // namespace herald::cli
