#pragma once
// One HTTP/1.1 connection: reads requests with Beast (header and idle
// timeouts from the worker's timing wheel, so slow clients cannot hold
// sockets), passes each to the HttpHandler, writes answers in order, keeps
// the connection alive, and hands the socket to a WsSession on upgrade.
//
// Lives on one IoWorker; all of its work runs on that thread.
#include <atomic>
#include <memory>
#include <optional>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "metrics/registry.hpp"
#include "transport/http_handler.hpp"

namespace herald::transport {

struct HttpLimits {
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 32u << 20;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};
  // Open HTTP connections (a WebSocket counts until its upgrade); one more
  // is answered 429 and closed (transport/http_refusal.hpp).
  std::size_t max_connections = 10000;
};

struct HttpCounters {
  metrics::Counter* requests = nullptr;
  metrics::Counter* timeouts = nullptr;
  metrics::Counter* bad_requests = nullptr;
  metrics::Gauge* open = nullptr;
  metrics::Counter* refused = nullptr;  // connections over HttpLimits::max_connections
  metrics::Counter* accept_errors = nullptr;  // accept() failures (out of descriptors, mostly)
};

// How many HttpSessions are open, shared by the listener (which counts a
// connection in as it accepts it) and the sessions (which count out).
using HttpOpenCount = std::shared_ptr<std::atomic<std::size_t>>;

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  // `open` was already counted up for this session; it counts down when
  // the session ends (null: not counted).
  HttpSession(IoWorker& worker, TcpSocket socket, HttpHandler& handler,
              HttpLimits limits, HttpCounters* counters, HttpOpenCount open = nullptr);
  ~HttpSession();
  void start();

 private:
  void do_wait_for_request();
  void do_read();
  void on_header(boost::system::error_code ec);
  void read_body();
  void on_read(boost::system::error_code ec);
  void on_response(HttpResponse response);
  void on_write(boost::system::error_code ec, bool keep_alive);
  void arm_timer(std::chrono::milliseconds after);
  void close_socket();

  IoWorker& worker_;
  TcpSocket socket_;
  HttpHandler& handler_;
  HttpLimits limits_;
  HttpCounters* counters_;
  HttpOpenCount open_;
  RequestContext ctx_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::shared_ptr<HttpResponse> response_;
  timers::TimerId timer_;
  bool keep_alive_ = false;
  unsigned version_ = 11;
  bool head_ = false;  // a HEAD request: answered as its GET, without the body
  bool closed_ = false;
};

}  // namespace herald::transport
