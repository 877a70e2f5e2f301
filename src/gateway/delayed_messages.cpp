#include "gateway/delayed_messages.hpp"

#include <vector>

namespace herald::gateway {

DelayedMessages::Result DelayedMessages::schedule(store::NewMessage message, std::int64_t deliver_at_ms) {
  std::lock_guard lock(mu_);
  if (!ids_.emplace(message.user, message.id).second) return Result::duplicate;
  if (due_.size() >= max_pending_) {
    ids_.erase({message.user, message.id});
    return Result::full;
  }
  due_.emplace(deliver_at_ms, std::move(message));
  return Result::scheduled;
}

void DelayedMessages::release_due(std::int64_t now_ms) {
  std::vector<store::NewMessage> ready;
  {
    std::lock_guard lock(mu_);
    while (!due_.empty() && due_.begin()->first <= now_ms) {
      ready.push_back(std::move(due_.begin()->second));
      due_.erase(due_.begin());
    }
  }
  if (ready.empty()) return;
  for (auto& m : ready) m.accepted_at_ms = now_ms;
  auto keys = std::make_shared<std::vector<std::pair<std::string, std::string>>>();
  for (const auto& m : ready) keys->emplace_back(m.user, m.id);
  auto copy = ready;
  const bool queued = publisher_.publish(std::move(copy), [this, keys](std::vector<store::AppendOutcome>) {
    std::lock_guard lock(mu_);
    for (const auto& k : *keys) ids_.erase(k);
  });
  if (!queued) {
    // Store queue full: keep them due and try again on the next call.
    std::lock_guard lock(mu_);
    for (auto& m : ready) due_.emplace(now_ms, std::move(m));
  }
}

std::size_t DelayedMessages::pending() const {
  std::lock_guard lock(mu_);
  return due_.size();
}

}  // namespace herald::gateway
