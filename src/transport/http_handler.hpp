#pragma once
// What the transport asks of the layers above for each HTTP request: an
// answer, or, for a WebSocket upgrade, the session that will run the
// connection. The transport knows nothing about what routes mean.
#include <functional>
#include <memory>
#include <string>
#include <variant>

#include <boost/beast/http.hpp>

#include "transport/ws_session.hpp"

namespace herald::transport {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

struct RequestContext {
  std::string remote_ip;
  IoWorker* worker = nullptr;  // the thread that owns this connection
};

// Called by the transport with the final answer; may be called from any
// thread, exactly once.
using Responder = std::function<void(HttpResponse)>;

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // A plain request. Called on the connection's worker thread.
  virtual void handle(HttpRequest request, const RequestContext& ctx, Responder respond) = 0;
  // A WebSocket upgrade: either the session for the new connection, built
  // on ctx.worker (the transport then gives it the socket and it completes
  // the handshake), or a refusal (PROTOCOL.md 2).
  virtual std::variant<std::shared_ptr<WsSession>, HttpResponse> upgrade(
      const HttpRequest& request, const RequestContext& ctx) = 0;
};

}  // namespace herald::transport
