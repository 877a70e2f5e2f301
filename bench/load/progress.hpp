#pragma once
// A one-line progress report on stderr, redrawn every second while a
// scenario runs on an io_context (the bench is long; silence looks hung).
#include <chrono>
#include <functional>
#include <iostream>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace herald::bench {

class Progress {
 public:
  // line() is called on the io_context's thread and returns the text.
  Progress(boost::asio::io_context& ioc, std::function<std::string()> line)
      : timer_(ioc), line_(std::move(line)) {
    arm();
  }
  ~Progress() { stop(); }
  void stop() {
    if (stopped_) return;
    stopped_ = true;
    timer_.cancel();
    std::cerr << "\r" << line_() << "\n" << std::flush;
  }

 private:
  void arm() {
    timer_.expires_after(std::chrono::seconds(1));
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopped_) return;
      std::cerr << "\r" << line_() << "   " << std::flush;
      arm();
    });
  }

  boost::asio::steady_timer timer_;
  std::function<std::string()> line_;
  bool stopped_ = false;
};

// The same one-line report for code that polls instead of running an
// io_context (a Fleet's waits): redraws the line; `last` ends it.
inline void show_progress(const std::string& line, bool last) {
  std::cerr << "\r" << line << (last ? "\n" : "   ") << std::flush;
}

// Monotonic nanoseconds shared by every process of the machine
// (CLOCK_MONOTONIC), so a publisher and a receiver in different processes
// can stamp and measure the same message.
inline std::int64_t mono_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace herald::bench
