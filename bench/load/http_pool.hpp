#pragma once
// Keep-alive HTTP/1.1 connections to one server for the bench tool's
// publishers: a fixed number of connections (the number of concurrent
// publishers), each with at most one request outstanding, and a FIFO of
// requests waiting for a free connection. Open-loop load puts requests in
// the FIFO at their intended time; the latency the caller computes from
// that time then includes the wait in the FIFO, so a stalled server shows
// up in the numbers instead of slowing the load down (no coordinated
// omission).
//
// Runs on one io_context thread; submit() must be called on it.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

namespace herald::bench {

struct HttpResult {
  int status = 0;  // 0: transport failure
  std::string body;
};

// Items of a /v1/publish/batch answer (`{"results":[...]}`) that are errors
// (PROTOCOL.md 10: `{"error":{...}}` in their place); all `items` when the
// answer is not that shape.
int count_batch_item_errors(const std::string& body, int items);

class HttpPool {
 public:
  using Done = std::function<void(const HttpResult&)>;

  // base_url "http://127.0.0.1:8080"; connections opened lazily.
  HttpPool(boost::asio::io_context& ioc, std::string base_url, std::string api_key, std::size_t connections);
  ~HttpPool();
  HttpPool(const HttpPool&) = delete;
  HttpPool& operator=(const HttpPool&) = delete;

  void submit(std::string target, std::string body, Done done);
  std::size_t waiting() const { return queue_.size(); }
  std::uint64_t failures() const { return failures_; }
  void close();

 private:
  struct Job {
    std::string target;
    std::string body;
    Done done;
  };
  class Connection;

  void dispatch();
  void on_idle(Connection* c);

  boost::asio::io_context& ioc_;
  std::string host_;
  std::string port_;
  std::string auth_;
  std::vector<std::shared_ptr<Connection>> connections_;
  std::vector<Connection*> idle_;
  std::deque<Job> queue_;
  std::uint64_t failures_ = 0;
};

}  // namespace herald::bench
