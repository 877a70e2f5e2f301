#pragma once
// The HTTP API (PROTOCOL.md 7, 8) and the WebSocket entry (section 2): routes
// each request to its handler. Thin: validation and JSON shaping here, the
// work in gateway services. /healthz, /readyz and /metrics need no key;
// every /v1/ route needs a publisher/admin key. With config `demo` on,
// POST /demo/token mints development tokens and POST /demo/publish publishes
// without a key (docs/configuration.md: never on a shared server).
#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include "api/publish_request.hpp"
#include "auth/api_keys.hpp"
#include "core/token_bucket.hpp"
#include "gateway/connect_handler.hpp"
#include "gateway/gateway_context.hpp"
#include "gateway/publish_service.hpp"
#include "gateway/delayed_messages.hpp"
#include "store/store_worker.hpp"
#include "transport/http_handler.hpp"

namespace herald::api {

class ApiHandler final : public transport::HttpHandler {
 public:
  ApiHandler(gateway::GatewayContext& ctx, gateway::PublishService& publisher,
             gateway::DelayedMessages& delayed, const auth::ApiKeys& keys,
             std::function<bool()> ready);

  void handle(transport::HttpRequest request, const transport::RequestContext& rc,
              transport::Responder respond) override;
  std::variant<std::shared_ptr<transport::WsSession>, transport::HttpResponse> upgrade(
      const transport::HttpRequest& request, const transport::RequestContext& rc) override;

  // Extra static pages (dashboard, demo) by exact path.
  void add_static(std::string path, std::string content_type, std::string body);

 private:
  // worker: where the answer is built once the store committed (the store
  // worker only hands it over); null builds it on the store worker.
  void publish(const transport::HttpRequest& req, bool batch, transport::IoWorker* worker,
               transport::Responder respond);
  transport::HttpResponse presence(std::string_view user);
  transport::HttpResponse messages(std::string_view user, const transport::HttpRequest& req);
  transport::HttpResponse message(std::string_view user, std::string_view seq_text);
  transport::HttpResponse kick(std::string_view user, const transport::HttpRequest& req);
  transport::HttpResponse dead_letters(const transport::HttpRequest& req);
  transport::HttpResponse stats();
  transport::HttpResponse demo_token(const transport::HttpRequest& req);
  std::optional<double> publish_rate_wait(std::string_view key);

  // A device of the user as inspection sees it: stored cursor merged with
  // its live connection, if any.
  struct DeviceView {
    std::string device;
    std::uint64_t cursor = 0;
    bool online = false;
    std::uint64_t last_sent = 0;
  };
  std::vector<DeviceView> device_views(std::string_view user);
  const char* device_state(std::string_view user, const DeviceView& d, std::uint64_t seq, bool retained,
                           bool dead) const;
  std::uint32_t attempts_of(std::string_view user, std::string_view device, std::uint64_t seq,
                            std::string_view state) const;

  gateway::GatewayContext& ctx_;
  gateway::PublishService& publisher_;
  gateway::DelayedMessages& delayed_;
  const auth::ApiKeys& keys_;
  std::function<bool()> ready_;
  gateway::ConnectHandler connect_;
  const std::int64_t started_ms_;

  std::mutex rate_mu_;  // publish requests only, per key bucket
  std::map<std::string, TokenBucket, std::less<>> rate_;

  struct StaticPage {
    std::string content_type;
    std::string body;
  };
  std::map<std::string, StaticPage, std::less<>> static_;
};

}  // namespace herald::api
