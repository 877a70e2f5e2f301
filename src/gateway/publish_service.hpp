#pragma once
// The publish path (ARCHITECTURE.md "Data flow"): append through the store
// worker (group commit), then tell the hub which users have new messages.
// The answer is given only once the append is durable under the sync policy.
#include <functional>
#include <vector>

#include "gateway/gateway_context.hpp"
#include "store/store_worker.hpp"

namespace herald::gateway {

class PublishService {
 public:
  using Done = std::function<void(std::vector<store::AppendOutcome>)>;

  PublishService(GatewayContext& ctx, store::StoreWorker& worker) : ctx_(ctx), worker_(worker) {}

  // Thread-safe. done runs on the store worker's thread (post elsewhere
  // from it). False when the store queue is full: answer 429/503 at once.
  bool publish(std::vector<store::NewMessage> messages, Done done);

 private:
  GatewayContext& ctx_;
  store::StoreWorker& worker_;
};

}  // namespace herald::gateway
