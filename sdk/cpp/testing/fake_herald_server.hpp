#pragma once
// A scripted stand-in for `herald serve` for the SDK's unit tests: accepts
// WebSocket upgrades on 127.0.0.1:0, records what clients send, and sends what the
// test tells it to. Single-threaded: everything runs on the io_context given to it,
// which the test drives. It knows no inboxes, no retries and no auth.
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "protocol/frames.hpp"

namespace herald::sdk::testing {

// One upgraded connection of the fake server.
class FakeConnection : public std::enable_shared_from_this<FakeConnection> {
 public:
  explicit FakeConnection(boost::asio::ip::tcp::socket socket);

  void send(std::string text);
  void send_welcome(const protocol::WelcomeFrame& w);
  void send_msg(std::uint64_t seq, std::uint32_t attempt = 1, std::string data_json = "{}");
  void close(int code, std::string reason = {});  // after queued frames
  void drop();                                    // TCP close, no close frame
  // A close frame written straight to the socket, which is then closed without
  // waiting for the answer: the client's reply meets a reset.
  void close_and_vanish(int code, std::string_view reason = {});

  // Seqs of ack frames received ({"seq":N}), in order; upto acks are in acked_upto().
  std::vector<std::uint64_t> acked_seqs() const;
  std::vector<std::uint64_t> acked_upto() const;
  // Seqs acknowledged, each once, in the order they were: by a seq ack, or by
  // an upto ack covering messages this connection sent (ascending).
  std::vector<std::uint64_t> acknowledged() const;
  // Ack frames received, of either kind.
  std::size_t ack_frames() const { return acked_seqs().size() + acked_upto().size(); }
  // Received frames of one type, decoded.
  std::vector<protocol::PingFrame> pings() const;

  std::string target;                     // request target, query included
  std::map<std::string, std::string> query;  // decoded query parameters
  std::string authorization;              // the Authorization header
  std::string subprotocol;                // Sec-WebSocket-Protocol asked for
  std::vector<std::string> received;      // text frames from the client, in order
  std::vector<std::uint64_t> sent_seqs;   // seqs of msg frames sent, in order
  bool answer_pings = true;               // answer ping frames with pong (PROTOCOL.md 3)
  // Read no more after the next frame: a server that stopped reading (its
  // socket stays open; a close from the client is never answered).
  bool stop_reading = false;
  bool ended = false;                     // the socket is gone
  std::optional<int> client_close_code;   // the close code the client sent, if it closed

  // Used by FakeHeraldServer.
  void start_read();
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws;

 private:
  struct CloseRequest { int code; std::string reason; };
  void do_write();
  std::deque<std::variant<std::string, CloseRequest>> out_;
  bool writing_ = false;
  boost::beast::flat_buffer buffer_;
};

class FakeHeraldServer {
 public:
  explicit FakeHeraldServer(boost::asio::io_context& ioc);
  ~FakeHeraldServer();

  std::string url() const;  // ws://127.0.0.1:PORT/v1/ws
  std::uint16_t port() const { return port_; }

  // The next `count` upgrade requests get this HTTP status and JSON body instead.
  void refuse_next(int status, std::string body, int count = 1,
                   std::optional<int> retry_after_seconds = std::nullopt);
  void stop();

  std::vector<std::shared_ptr<FakeConnection>> connections;  // in accept order
  std::function<void(FakeConnection&)> on_open;              // right after each upgrade
  int refused = 0;                                            // upgrades refused so far

 private:
  struct Pending;  // an accepted socket whose upgrade request is being read
  void do_accept();
  void on_request(const std::shared_ptr<Pending>& pending);

  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  int refuse_count_ = 0;
  int refuse_status_ = 0;
  std::string refuse_body_;
  std::optional<int> refuse_retry_after_;
};

// A welcome as Herald sends it, with fields a test usually does not care about filled in.
protocol::WelcomeFrame make_welcome(std::string epoch, std::uint64_t resume_from = 1,
                                    std::int64_t heartbeat_ms = 0);

}  // namespace herald::sdk::testing
