#include "gateway/delayed_messages.hpp"

#include <memory>
#include <variant>
#include <vector>

namespace herald::gateway {

DelayedMessages::Result DelayedMessages::schedule(const store::NewMessage& message,
                                                  std::int64_t deliver_at_ms) {
  switch (schedule_.schedule(message, deliver_at_ms)) {
    case store::ScheduleResult::scheduled: return Result::scheduled;
    case store::ScheduleResult::duplicate: return Result::duplicate;
    case store::ScheduleResult::full: return Result::full;
    case store::ScheduleResult::unavailable: return Result::unavailable;
  }
  return Result::unavailable;
}

void DelayedMessages::release_due(std::int64_t now_ms) {
  std::vector<store::ScheduledMessage> due = schedule_.due(now_ms, kReleaseBatch);
  std::vector<store::NewMessage> ready;
  auto ids = std::make_shared<std::vector<std::uint64_t>>();
  {
    std::lock_guard lock(mu_);
    for (auto& s : due) {
      if (!inflight_.insert(s.schedule_id).second) continue;  // still being appended
      s.message.accepted_at_ms = now_ms;
      s.message.from_schedule = true;
      ids->push_back(s.schedule_id);
      ready.push_back(std::move(s.message));
    }
  }
  if (ready.empty()) return;
  // Append dedups by (user, id): a crash before remove() appends them again
  // as duplicates, never twice.
  const bool queued = publisher_.publish(
      std::move(ready), [this, ids](std::vector<store::AppendOutcome> outcomes) {
        std::vector<std::uint64_t> appended;
        appended.reserve(ids->size());
        for (std::size_t i = 0; i < ids->size() && i < outcomes.size(); ++i) {
          if (std::holds_alternative<store::AppendResult>(outcomes[i])) appended.push_back((*ids)[i]);
        }
        schedule_.remove(appended);
        std::lock_guard lock(mu_);
        for (const std::uint64_t id : *ids) inflight_.erase(id);
      });
  if (!queued) {
    // Store queue full: they stay scheduled for the next call.
    std::lock_guard lock(mu_);
    for (const std::uint64_t id : *ids) inflight_.erase(id);
  }
}

std::size_t DelayedMessages::pending() const { return schedule_.scheduled_count(); }

}  // namespace herald::gateway
