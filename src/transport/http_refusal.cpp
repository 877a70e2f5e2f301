#include "transport/http_refusal.hpp"

#include <array>
#include <chrono>
#include <memory>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>

#include "core/errc.hpp"

namespace herald::transport {
namespace http = boost::beast::http;

namespace {

constexpr auto kLinger = std::chrono::seconds(1);

class HttpRefusal : public std::enable_shared_from_this<HttpRefusal> {
 public:
  explicit HttpRefusal(TcpSocket socket) : socket_(std::move(socket)), timer_(socket_.get_executor()) {
    response_.set(http::field::content_type, "application/json");
    response_.set(http::field::retry_after, "1");
    response_.keep_alive(false);
    response_.body() = error_body(errc::too_many_connections, "too many HTTP connections");
    response_.prepare_payload();
  }

  void start() {
    timer_.expires_after(kLinger);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->close();
    });
    http::async_write(socket_, response_, [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
      if (ec) return self->close();
      boost::system::error_code ignored;
      self->socket_.shutdown(TcpSocket::shutdown_send, ignored);
      self->drain();
    });
  }

 private:
  // Reads until the client closes its side (or the linger ends).
  void drain() {
    socket_.async_read_some(boost::asio::buffer(scratch_),
                            [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                              if (ec) return self->close();
                              self->drain();
                            });
  }

  void close() {
    timer_.cancel();
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  TcpSocket socket_;
  boost::asio::steady_timer timer_;
  http::response<http::string_body> response_{http::status::too_many_requests, 11};
  std::array<char, 512> scratch_;
};

}  // namespace

void refuse_http_connection(TcpSocket socket) { std::make_shared<HttpRefusal>(std::move(socket))->start(); }

}  // namespace herald::transport
