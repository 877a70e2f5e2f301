#pragma once
// Drives an io_context until a condition holds or a deadline passes: the tests'
// way to wait for an effect without sleeping.
#include <chrono>

#include <boost/asio/io_context.hpp>

namespace herald::sdk::testing {

template <class Predicate>
bool run_until(boost::asio::io_context& ioc, Predicate done,
               std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    ioc.restart();
    ioc.run_one_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace herald::sdk::testing
