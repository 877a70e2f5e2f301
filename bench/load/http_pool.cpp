#include "http_pool.hpp"

#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>

namespace herald::bench {

int count_batch_item_errors(const std::string& body, int items) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(body, ec);
  const auto* results = !ec && v.is_object() ? v.as_object().if_contains("results") : nullptr;
  if (results == nullptr || !results->is_array()) return items;
  int n = 0;
  for (const auto& r : results->as_array()) {
    if (r.is_object() && r.as_object().contains("error")) ++n;
  }
  return n;
}

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// One keep-alive connection: connect on first use, reconnect after a failure.
class HttpPool::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(HttpPool& pool) : pool_(pool), stream_(pool.ioc_) {}

  void run(Job job) {
    job_ = std::move(job);
    req_ = {};
    req_.method(http::verb::post);
    req_.target(job_.target);
    req_.version(11);
    req_.set(http::field::host, pool_.host_);
    req_.set(http::field::authorization, pool_.auth_);
    req_.set(http::field::content_type, "application/json");
    req_.keep_alive(true);
    req_.body() = std::move(job_.body);
    req_.prepare_payload();
    stream_.expires_after(std::chrono::seconds(30));
    if (connected_) return write();
    tcp::resolver resolver(pool_.ioc_);
    boost::system::error_code resolve_ec;
    auto endpoints = resolver.resolve(pool_.host_, pool_.port_, resolve_ec);
    if (resolve_ec) return finish(HttpResult{0, resolve_ec.message()});
    stream_.async_connect(endpoints, [self = shared_from_this()](auto ec, auto) {
      if (ec) return self->finish(HttpResult{0, ec.message()});
      self->connected_ = true;
      self->stream_.socket().set_option(tcp::no_delay(true));
      self->write();
    });
  }

  void close() {
    boost::system::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
    connected_ = false;
  }

 private:
  void write() {
    http::async_write(stream_, req_, [self = shared_from_this()](auto ec, std::size_t) {
      if (ec) return self->finish(HttpResult{0, ec.message()});
      self->res_ = {};
      http::async_read(self->stream_, self->buf_, self->res_, [self](auto ec2, std::size_t) {
        if (ec2) return self->finish(HttpResult{0, ec2.message()});
        if (!self->res_.keep_alive()) self->close();
        self->finish(HttpResult{static_cast<int>(self->res_.result_int()), std::move(self->res_.body())});
      });
    });
  }

  void finish(HttpResult r) {
    if (r.status == 0) {
      ++pool_.failures_;
      close();
    }
    Done done = std::move(job_.done);
    job_ = {};
    done(r);
    pool_.on_idle(this);
  }

  HttpPool& pool_;
  beast::tcp_stream stream_;
  beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  Job job_;
  bool connected_ = false;
};

HttpPool::HttpPool(asio::io_context& ioc, std::string base_url, std::string api_key, std::size_t connections)
    : ioc_(ioc), auth_("Bearer " + std::move(api_key)) {
  if (!base_url.starts_with("http://")) throw std::invalid_argument("bench: the server URL must be http://HOST:PORT");
  const std::string hostport = base_url.substr(7, base_url.find('/', 7) - 7);
  const auto colon = hostport.rfind(':');
  host_ = hostport.substr(0, colon);
  port_ = colon == std::string::npos ? "80" : hostport.substr(colon + 1);
  for (std::size_t i = 0; i < std::max<std::size_t>(1, connections); ++i) {
    connections_.push_back(std::make_shared<Connection>(*this));
    idle_.push_back(connections_.back().get());
  }
}

HttpPool::~HttpPool() { close(); }

void HttpPool::close() {
  for (auto& c : connections_) c->close();
}

void HttpPool::submit(std::string target, std::string body, Done done) {
  queue_.push_back(Job{std::move(target), std::move(body), std::move(done)});
  dispatch();
}

void HttpPool::on_idle(Connection* c) {
  idle_.push_back(c);
  dispatch();
}

void HttpPool::dispatch() {
  while (!idle_.empty() && !queue_.empty()) {
    Connection* c = idle_.back();
    idle_.pop_back();
    Job job = std::move(queue_.front());
    queue_.pop_front();
    c->run(std::move(job));
  }
}

}  // namespace herald::bench
