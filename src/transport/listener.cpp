#include "transport/listener.hpp"

#include <boost/asio/post.hpp>

#include "core/log.hpp"
#include "transport/http_refusal.hpp"

namespace herald::transport {
namespace asio = boost::asio;
using asio::ip::tcp;

Listener::Listener(std::vector<IoWorker*> workers, const tcp::endpoint& endpoint,
                   HttpHandler& handler, HttpLimits limits, HttpCounters* counters)
    : workers_(std::move(workers)),
      acceptor_(workers_.front()->context()),
      retry_timer_(workers_.front()->context()),
      handler_(handler),
      limits_(limits),
      counters_(counters) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  local_ = acceptor_.local_endpoint();
}

void Listener::start() {
  asio::post(acceptor_.get_executor(), [this] { do_accept(); });
}

void Listener::stop() {
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    retry_timer_.cancel();
  });
}

void Listener::do_accept() {
  IoWorker* worker = workers_[next_++ % workers_.size()];
  acceptor_.async_accept(worker->context(), [this, worker](boost::system::error_code ec,
                                                           TcpSocket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // Typically EMFILE: wait a little instead of spinning. Told, since
      // clients then only see their connects hang in the backlog.
      if (counters_ != nullptr && counters_->accept_errors != nullptr) counters_->accept_errors->inc();
      static log::Throttle throttle(std::chrono::seconds(10));
      if (const auto held = throttle.admit()) {
        log::warn("cannot accept connections", {{"error", ec.message()}, {"suppressed", *held}});
      }
      retry_timer_.expires_after(std::chrono::milliseconds(50));
      retry_timer_.async_wait([this](boost::system::error_code e) {
        if (!e) do_accept();
      });
      return;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    if (open_->load(std::memory_order_relaxed) >= limits_.max_connections) {
      if (counters_ != nullptr && counters_->refused != nullptr) counters_->refused->inc();
      asio::post(worker->context(), [s = std::move(socket)]() mutable { refuse_http_connection(std::move(s)); });
      return do_accept();
    }
    open_->fetch_add(1, std::memory_order_relaxed);
    asio::post(worker->context(), [this, worker, s = std::move(socket)]() mutable {
      std::make_shared<HttpSession>(*worker, std::move(s), handler_, limits_, counters_, open_)
          ->start();
    });
    do_accept();
  });
}

}  // namespace herald::transport
