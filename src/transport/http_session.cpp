#include "transport/http_session.hpp"

#include <string_view>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "core/errc.hpp"

namespace herald::transport {
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

HttpResponse error_response(http::status status, errc code, std::string_view message) {
  HttpResponse res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.body() = error_body(code, message);
  return res;
}

}  // namespace

HttpSession::HttpSession(IoWorker& worker, TcpSocket socket, HttpHandler& handler,
                         HttpLimits limits, HttpCounters* counters, HttpOpenCount open)
    : worker_(worker),
      socket_(std::move(socket)),
      handler_(handler),
      limits_(limits),
      counters_(counters),
      open_(std::move(open)) {
  boost::system::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  if (!ec) ctx_.remote_ip = ep.address().to_string();
  ctx_.worker = &worker_;
  if (counters_ != nullptr && counters_->open != nullptr) counters_->open->add(1);
}

HttpSession::~HttpSession() {
  if (open_) open_->fetch_sub(1, std::memory_order_relaxed);
  if (counters_ != nullptr && counters_->open != nullptr) counters_->open->sub(1);
}

void HttpSession::start() { do_wait_for_request(); }

void HttpSession::arm_timer(std::chrono::milliseconds after) {
  worker_.wheel().cancel(timer_);
  std::weak_ptr<HttpSession> weak = weak_from_this();
  timer_ = worker_.wheel().schedule_after(after, [weak] {
    if (auto self = weak.lock()) {
      if (self->counters_ != nullptr && self->counters_->timeouts != nullptr) {
        self->counters_->timeouts->inc();
      }
      self->close_socket();
    }
  });
}

void HttpSession::do_wait_for_request() {
  // Waiting for the first byte of a request costs no buffer; the header
  // timeout starts only once bytes arrive.
  arm_timer(limits_.idle_timeout);
  if (buffer_.size() > 0) return do_read();
  socket_.async_wait(TcpSocket::wait_read,
                     [self = shared_from_this()](boost::system::error_code ec) {
                       if (ec) return self->close_socket();
                       self->do_read();
                     });
}

void HttpSession::do_read() {
  arm_timer(limits_.header_timeout);
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(limits_.max_header_bytes));
  parser_->body_limit(limits_.max_body_bytes);
  http::async_read_header(socket_, buffer_, *parser_,
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                            self->on_header(ec);
                          });
}

// A client that sent `Expect: 100-continue` waits for a 100 before it sends
// the body (curl does so for bodies over 1 MiB; RFC 9110 10.1.1): answer at
// once instead of leaving it to its own timeout (about 1 s for curl).
void HttpSession::on_header(boost::system::error_code ec) {
  if (ec || closed_ || parser_->is_done()) return on_read(ec);
  // Too large by its Content-Length: 413 now, not a 100 for a body refused after.
  if (const auto length = parser_->content_length(); length && *length > limits_.max_body_bytes) {
    return on_read(http::error::body_limit);
  }
  const auto& req = parser_->get();
  if (req.version() >= 11 && beast::iequals(req[http::field::expect], "100-continue")) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    return boost::asio::async_write(socket_, boost::asio::buffer(kContinue.data(), kContinue.size()),
                                    [self = shared_from_this()](boost::system::error_code wec, std::size_t) {
                                      if (wec) return self->on_read(wec);
                                      self->read_body();
                                    });
  }
  read_body();
}

void HttpSession::read_body() {
  http::async_read(socket_, buffer_, *parser_,
                   [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                     self->on_read(ec);
                   });
}

void HttpSession::on_read(boost::system::error_code ec) {
  worker_.wheel().cancel(timer_);
  if (closed_) return;
  if (ec) {
    if (ec == http::error::end_of_stream || ec == boost::asio::error::operation_aborted ||
        ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset) {
      return close_socket();
    }
    if (counters_ != nullptr && counters_->bad_requests != nullptr) counters_->bad_requests->inc();
    keep_alive_ = false;
    version_ = 11;
    if (ec == http::error::body_limit) {
      return on_response(error_response(http::status::payload_too_large, errc::payload_too_large,
                                        "request body too large"));
    }
    if (ec == http::error::header_limit) {
      return on_response(error_response(http::status::request_header_fields_too_large,
                                        errc::bad_request, "request header too large"));
    }
    if (ec == http::error::partial_message || ec.category() != boost::beast::http::make_error_code(http::error::bad_target).category()) {
      return close_socket();
    }
    return on_response(error_response(http::status::bad_request, errc::bad_request,
                                      "malformed HTTP request"));
  }
  if (counters_ != nullptr && counters_->requests != nullptr) counters_->requests->inc();
  HttpRequest req = parser_->release();
  parser_.reset();
  keep_alive_ = req.keep_alive();
  version_ = req.version();

  if (beast::websocket::is_upgrade(req)) {
    auto decision = handler_.upgrade(req, ctx_);
    if (auto* session = std::get_if<std::shared_ptr<WsSession>>(&decision)) {
      closed_ = true;
      (*session)->accept(std::move(socket_), std::move(req));
      return;
    }
    keep_alive_ = false;
    return on_response(std::move(std::get<HttpResponse>(decision)));
  }

  // HEAD is GET without the body (RFC 9110 9.3.2): the handler sees a GET.
  head_ = req.method() == http::verb::head;
  if (head_) req.method(http::verb::get);
  handler_.handle(std::move(req), ctx_, [self = shared_from_this()](HttpResponse res) {
    boost::asio::post(self->worker_.context(), [self, res = std::move(res)]() mutable {
      self->on_response(std::move(res));
    });
  });
}

void HttpSession::on_response(HttpResponse response) {
  if (closed_) return;
  response.version(version_);
  response.keep_alive(keep_alive_);
  if (response.find(http::field::server) == response.end()) response.set(http::field::server, "herald");
  response.prepare_payload();
  if (std::exchange(head_, false)) response.body().clear();  // Content-Length stays the GET's
  response_ = std::make_shared<HttpResponse>(std::move(response));
  const bool keep = keep_alive_;
  http::async_write(socket_, *response_,
                    [self = shared_from_this(), keep](boost::system::error_code ec, std::size_t) {
                      self->on_write(ec, keep);
                    });
}

void HttpSession::on_write(boost::system::error_code ec, bool keep_alive) {
  response_.reset();
  if (ec || !keep_alive) {
    boost::system::error_code ignored;
    socket_.shutdown(TcpSocket::shutdown_send, ignored);
    return close_socket();
  }
  // Release the read buffer between requests: an idle keep-alive connection
  // should hold no large allocation.
  if (buffer_.size() == 0) buffer_.shrink_to_fit();
  do_wait_for_request();
}

void HttpSession::close_socket() {
  if (closed_) return;
  closed_ = true;
  worker_.wheel().cancel(timer_);
  boost::system::error_code ignored;
  socket_.close(ignored);
}

}  // namespace herald::transport
