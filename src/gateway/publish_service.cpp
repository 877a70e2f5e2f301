#include "gateway/publish_service.hpp"

#include <algorithm>
#include <memory>

#include "core/log.hpp"

namespace herald::gateway {

bool PublishService::publish(std::vector<store::NewMessage> messages, Done done) {
  // Who to notify after the commit, and how urgently.
  struct Target {
    store::Priority priority;
    std::string user;
  };
  auto targets = std::make_shared<std::vector<Target>>();
  targets->reserve(messages.size());
  for (const auto& m : messages) {
    targets->push_back({m.priority, m.user});
    log::debug("publish accepted", {{"user", m.user}, {"id", m.id}, {"trace_id", m.trace_id}});
  }
  return worker_.submit(std::move(messages), [this, targets, done = std::move(done)](
                                                 std::vector<store::AppendOutcome> outcomes) {
    std::vector<const Target*> notify;
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
      const auto* r = std::get_if<store::AppendResult>(&outcomes[i]);
      if (r == nullptr) continue;
      if (r->duplicate) {
        ctx_.metrics.messages_duplicate.inc();
        continue;
      }
      ctx_.metrics.messages_published.inc();
      notify.push_back(&(*targets)[i]);
    }
    // Dispatch order across users follows priority (PROTOCOL.md 7); each
    // user's inbox order is the append order whatever the priority.
    std::stable_sort(notify.begin(), notify.end(),
                     [](const Target* a, const Target* b) { return a->priority < b->priority; });
    std::string_view last;
    std::vector<std::string> users;
    for (const Target* t : notify) {
      if (t->user != last) {
        ctx_.hub.notify(t->user);
        if (ctx_.remote_notify) users.push_back(t->user);
      }
      last = t->user;
    }
    done(std::move(outcomes));
    if (ctx_.remote_notify && !users.empty()) {
      std::sort(users.begin(), users.end());
      users.erase(std::unique(users.begin(), users.end()), users.end());
      ctx_.remote_notify(users);
    }
  });
}

}  // namespace herald::gateway
