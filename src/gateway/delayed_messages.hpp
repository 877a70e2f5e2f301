#pragma once
// Messages published with a future deliver_at (PROTOCOL.md 7): held until
// due, then appended through the normal publish path (they get their seq
// then). Dedup covers them while scheduled (PROTOCOL.md 10).
//
// This holder is in memory: a restart loses what is scheduled. The durable
// schedule belongs to the store (reliability issue); see docs/protocol.md.
// Thread-safe.
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "gateway/publish_service.hpp"

namespace herald::gateway {

class DelayedMessages {
 public:
  enum class Result { scheduled, duplicate, full };

  DelayedMessages(PublishService& publisher, std::size_t max_pending)
      : publisher_(publisher), max_pending_(max_pending) {}

  Result schedule(store::NewMessage message, std::int64_t deliver_at_ms);
  // Hands every due message to the publish path; call periodically.
  void release_due(std::int64_t now_ms);
  std::size_t pending() const;

 private:
  PublishService& publisher_;
  const std::size_t max_pending_;
  mutable std::mutex mu_;
  std::multimap<std::int64_t, store::NewMessage> due_;
  std::set<std::pair<std::string, std::string>> ids_;  // (user, id) while scheduled
};

}  // namespace herald::gateway
