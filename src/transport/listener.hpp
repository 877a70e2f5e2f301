#pragma once
// Accepts TCP connections and deals them round-robin to the I/O workers;
// each accepted socket lives on its worker from then on.
#include <memory>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "transport/http_session.hpp"

namespace herald::transport {

class Listener {
 public:
  // Binds and listens at once (throws boost::system::system_error on failure).
  Listener(std::vector<IoWorker*> workers, const boost::asio::ip::tcp::endpoint& endpoint,
           HttpHandler& handler, HttpLimits limits, HttpCounters* counters);
  boost::asio::ip::tcp::endpoint local_endpoint() const { return local_; }
  void start();
  // Stops accepting (thread-safe; completes on the acceptor's thread).
  void stop();

 private:
  void do_accept();

  std::vector<IoWorker*> workers_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;  // backs off when accept fails (e.g. out of descriptors)
  boost::asio::ip::tcp::endpoint local_;
  HttpHandler& handler_;
  HttpLimits limits_;
  HttpCounters* counters_;
  HttpOpenCount open_ = std::make_shared<std::atomic<std::size_t>>(0);
  std::size_t next_ = 0;
};

}  // namespace herald::transport
