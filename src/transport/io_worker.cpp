#include "transport/io_worker.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include "core/thread_name.hpp"
namespace herald::transport {

IoWorker::IoWorker(std::size_t index, std::chrono::milliseconds tick)
    : index_(index), tick_(tick), wheel_(tick), tick_timer_(ioc_) {}

void IoWorker::start() {
  thread_ = std::thread([this] {
    set_thread_name("herald-io-" + std::to_string(index_));
    auto guard = boost::asio::make_work_guard(ioc_);
    do_tick();
    ioc_.run();
  });
}

void IoWorker::do_tick() {
  wheel_.advance(timers::TimingWheel::Clock::now());
  tick_timer_.expires_after(tick_);
  tick_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) do_tick();
  });
}

void IoWorker::stop() { ioc_.stop(); }

void IoWorker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace herald::transport
