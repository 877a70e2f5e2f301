#include "herald/http_api.hpp"

#include <algorithm>
#include <cctype>
#include <exception>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "herald/endpoint.hpp"

namespace herald::sdk {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Inspection answers can be long lists; anything past this is not an answer we expect.
constexpr std::uint64_t max_response_body_bytes = 64u << 20;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string join_target(std::string_view base_target, std::string_view target) {
  // parse_endpoint gives at least "/"; drop its query and the trailing slash.
  std::string base(base_target.substr(0, base_target.find('?')));
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (target.empty() || target.front() != '/') base += '/';
  base += target;
  return base;
}

asio::awaitable<void> exchange(const Endpoint& ep, http::request<http::string_body>& req,
                               beast::tcp_stream& stream, HttpResponse& out) {
  tcp::resolver resolver(co_await asio::this_coro::executor);
  const auto results = co_await resolver.async_resolve(ep.host, ep.port, asio::use_awaitable);
  co_await stream.async_connect(results, asio::use_awaitable);
  co_await http::async_write(stream, req, asio::use_awaitable);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_response_body_bytes);
  co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
  auto res = parser.release();
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    auto [it, inserted] = out.headers.emplace(lower(field.name_string()), std::string(field.value()));
    if (!inserted) it->second.append(", ").append(field.value());
  }
  out.body = std::move(res.body());
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

}  // namespace

HttpResponse http_request(std::string_view method, std::string_view base_url,
                          std::string_view target, std::string_view api_key,
                          std::string_view body,
                          std::vector<std::pair<std::string, std::string>> extra_headers,
                          std::chrono::milliseconds timeout) {
  HttpResponse out;
  const auto ep = parse_endpoint(base_url);
  if (!ep) {
    out.body = "bad base url '" + std::string(base_url) + "': " + ep.error().message();
    return out;
  }
  const auto verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) {
    out.body = "unknown HTTP method '" + std::string(method) + "'";
    return out;
  }

  http::request<http::string_body> req{verb, join_target(ep->target, target), 11};
  req.set(http::field::host, ep->host_header);
  req.set(http::field::user_agent, "herald-sdk-cpp");
  req.set(http::field::connection, "close");
  if (!api_key.empty()) req.set(http::field::authorization, "Bearer " + std::string(api_key));
  bool has_content_type = false;
  for (auto& [name, value] : extra_headers) {
    has_content_type = has_content_type || lower(name) == "content-type";
    req.set(name, value);
  }
  if (!body.empty()) {
    if (!has_content_type) req.set(http::field::content_type, "application/json");
    req.body() = std::string(body);
  }
  req.prepare_payload();

  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  asio::steady_timer deadline(ioc, timeout);
  bool timed_out = false;
  std::string failure;
  deadline.async_wait([&](const beast::error_code& ec) {
    if (ec) return;
    timed_out = true;
    stream.close();  // the resolver, if still running, is short-lived on loopback names
    ioc.stop();
  });
  asio::co_spawn(ioc, exchange(*ep, req, stream, out), [&](std::exception_ptr e) {
    deadline.cancel();
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      failure = ex.what();
    }
  });
  ioc.run();
  if (timed_out) {
    return HttpResponse{0, "timed out after " + std::to_string(timeout.count()) + " ms", {}};
  }
  if (!failure.empty()) return HttpResponse{0, failure, {}};
  return out;
}

}  // namespace herald::sdk
