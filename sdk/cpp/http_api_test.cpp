#include "herald/http_api.hpp"

#include <future>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

namespace herald::sdk {
namespace {
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// Answers one request on 127.0.0.1:0 from its own thread, and hands the request back.
class OneShotHttpServer {
 public:
  explicit OneShotHttpServer(http::response<http::string_body> response)
      : acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        response_(std::move(response)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~OneShotHttpServer() { thread_.join(); }

  std::string base_url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  http::request<http::string_body> request() { return promise_.get_future().get(); }

 private:
  void serve() {
    try {
      tcp::socket socket(ioc_);
      acceptor_.accept(socket);
      beast::flat_buffer buffer;
      http::request<http::string_body> req;
      http::read(socket, buffer, req);
      response_.prepare_payload();
      http::write(socket, response_);
      promise_.set_value(std::move(req));
    } catch (...) {
      promise_.set_exception(std::current_exception());
    }
  }

  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  http::response<http::string_body> response_;
  std::promise<http::request<http::string_body>> promise_;
  std::thread thread_;
};

TEST(HttpRequest, SendsMethodTargetKeyAndJsonBodyAndReturnsTheAnswer) {
  http::response<http::string_body> res{http::status::ok, 11};
  res.set("X-Herald-Test", "yes");
  res.set(http::field::content_type, "application/json");
  res.body() = R"({"results":[]})";
  OneShotHttpServer server(res);

  auto out = http_request("POST", server.base_url(), "/v1/publish", "key-1", R"({"user":"u1"})",
                          {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}});
  EXPECT_EQ(out.status, 200);
  EXPECT_EQ(out.body, R"({"results":[]})");
  EXPECT_EQ(out.headers["x-herald-test"], "yes");

  auto req = server.request();
  EXPECT_EQ(req.method(), http::verb::post);
  EXPECT_EQ(req.target(), "/v1/publish");
  EXPECT_EQ(req[http::field::authorization], "Bearer key-1");
  EXPECT_EQ(req[http::field::content_type], "application/json");
  EXPECT_EQ(req["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_EQ(req.body(), R"({"user":"u1"})");
}

TEST(HttpRequest, GetWithoutKeyOrBodySendsNeither) {
  http::response<http::string_body> res{http::status::not_found, 11};
  res.body() = R"({"error":{"code":"not_found","message":"no such seq"}})";
  OneShotHttpServer server(res);

  auto out = http_request("GET", server.base_url() + "/", "/healthz", "");
  EXPECT_EQ(out.status, 404);
  auto req = server.request();
  EXPECT_EQ(req.target(), "/healthz");
  EXPECT_EQ(req.count(http::field::authorization), 0u);
  EXPECT_EQ(req.count(http::field::content_type), 0u);
  EXPECT_TRUE(req.body().empty());
}

TEST(HttpRequest, APathInTheBaseUrlPrefixesTheTarget) {
  OneShotHttpServer server(http::response<http::string_body>{http::status::ok, 11});
  auto out = http_request("GET", server.base_url() + "/herald", "/v1/stats", "k");
  EXPECT_EQ(out.status, 200);
  EXPECT_EQ(server.request().target(), "/herald/v1/stats");
}

TEST(HttpRequest, RefusedConnectionGivesStatusZeroAndAReason) {
  std::string url;
  {
    asio::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    url = "http://127.0.0.1:" + std::to_string(a.local_endpoint().port());
  }
  auto out = http_request("GET", url, "/healthz", "");
  EXPECT_EQ(out.status, 0);
  EXPECT_FALSE(out.body.empty());
}

TEST(HttpRequest, ServerThatNeverAnswersTimesOut) {
  asio::io_context ioc;
  tcp::acceptor silent(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));  // listens, never accepts
  const auto url = "http://127.0.0.1:" + std::to_string(silent.local_endpoint().port());
  auto out = http_request("GET", url, "/healthz", "", {}, {}, 100ms);
  EXPECT_EQ(out.status, 0);
  EXPECT_NE(out.body.find("timed out"), std::string::npos);
}

TEST(HttpRequest, BadBaseUrlOrMethodGivesStatusZero) {
  EXPECT_EQ(http_request("GET", "ws//nope", "/", "").status, 0);
  EXPECT_EQ(http_request("FETCH", "http://127.0.0.1:1", "/", "").status, 0);
}

}  // namespace
}  // namespace herald::sdk
