#pragma once
// Builds the configured store backend.
#include <memory>

#include "config/server_config.hpp"
#include "metrics/registry.hpp"
#include "store/inbox_store.hpp"
#include "store/schedule_store.hpp"

namespace herald::server {

// One backend seen through both of its interfaces.
struct Stores {
  std::unique_ptr<store::InboxStore> inbox;  // owns the backend
  store::ScheduleStore& schedule;            // the same backend, valid while inbox lives
};

// Registers the backend's own metrics (the redis link's) in registry, which
// must outlive the store. Throws config::ConfigError for an unusable setting.
Stores make_store(const config::ServerConfig& config, metrics::Registry& registry);

}  // namespace herald::server
