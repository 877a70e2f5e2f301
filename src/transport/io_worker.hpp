#pragma once
// One I/O thread: an io_context, the connections accepted onto it, and the
// timing wheel that holds all of their timers (ARCHITECTURE.md "Threading").
// Other threads reach a connection only by posting to its worker.
#include <chrono>
#include <cstddef>
#include <memory>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "timers/timing_wheel.hpp"

namespace herald::transport {

// A connection's socket, bound to its worker's io_context by type: no
// type-erased executor (56 bytes in every socket and pending operation,
// and an indirect call per handler).
using TcpSocket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;

class IoWorker {
 public:
  IoWorker(std::size_t index, std::chrono::milliseconds tick);
  IoWorker(const IoWorker&) = delete;
  IoWorker& operator=(const IoWorker&) = delete;

  std::size_t index() const { return index_; }
  boost::asio::io_context& context() { return ioc_; }
  // Only from this worker's thread.
  timers::TimingWheel& wheel() { return wheel_; }

  // Starts the thread (runs until stop()).
  void start();
  void stop();
  void join();
  bool in_this_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  void do_tick();

  const std::size_t index_;
  const std::chrono::milliseconds tick_;
  boost::asio::io_context ioc_{1};
  timers::TimingWheel wheel_;
  boost::asio::steady_timer tick_timer_;
  std::thread thread_;
};

}  // namespace herald::transport
