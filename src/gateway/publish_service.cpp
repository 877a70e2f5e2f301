#include "gateway/publish_service.hpp"

#include <memory>

#include "core/log.hpp"

namespace herald::gateway {

bool PublishService::publish(std::vector<store::NewMessage> messages, Done done) {
  // The users, kept to notify the hub after the commit.
  auto users = std::make_shared<std::vector<std::string>>();
  users->reserve(messages.size());
  for (const auto& m : messages) {
    users->push_back(m.user);
    log::debug("publish accepted", {{"user", m.user}, {"id", m.id}, {"trace_id", m.trace_id}});
  }
  return worker_.submit(std::move(messages), [this, users, done = std::move(done)](
                                                 std::vector<store::AppendOutcome> outcomes) {
    std::string_view last;
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
      const auto* r = std::get_if<store::AppendResult>(&outcomes[i]);
      if (r == nullptr) continue;
      if (r->duplicate) {
        ctx_.metrics.messages_duplicate.inc();
        continue;
      }
      ctx_.metrics.messages_published.inc();
      // One notify per run of the same user (batches often repeat a user).
      if ((*users)[i] != last) ctx_.hub.notify((*users)[i]);
      last = (*users)[i];
    }
    done(std::move(outcomes));
  });
}

}  // namespace herald::gateway
