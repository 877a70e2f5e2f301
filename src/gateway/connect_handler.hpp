#pragma once
// Decides a WebSocket upgrade at /v1/ws before it happens (PROTOCOL.md 2):
// draining 503, token 401 (header, then query, then cookie; checked before
// the parameters), parameters 400, Origin 403, limits 429. On success it
// builds the Connection and registers it in the hub, replacing the device's
// older connection (4011).
#include <memory>
#include <variant>

#include "gateway/gateway_context.hpp"
#include "transport/http_handler.hpp"

namespace herald::gateway {

class ConnectHandler {
 public:
  explicit ConnectHandler(GatewayContext& ctx);

  std::variant<std::shared_ptr<transport::WsSession>, transport::HttpResponse> upgrade(
      const transport::HttpRequest& request, const transport::RequestContext& rc);

 private:
  transport::HttpResponse refuse(RefuseReason why, errc code, std::string_view message,
                                 std::string_view field = {});
  GatewayContext& ctx_;
  // Every connection refers to this one (transport::WsSession).
  const transport::WsLimits ws_limits_;
};

}  // namespace herald::gateway
