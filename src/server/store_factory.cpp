#include "server/store_factory.hpp"

#include "core/log.hpp"
#include "store/memory/memory_inbox_store.hpp"

namespace herald::server {

std::unique_ptr<store::InboxStore> make_store(const config::ServerConfig& c) {
  store::StorePolicy policy{c.retention_max_messages, c.retention_ttl.count(), c.dedup_window.count()};
  switch (c.store) {
    case config::StoreKind::memory:
      return std::make_unique<store::MemoryInboxStore>(policy);
    case config::StoreKind::rocksdb:
      log::warn("rocksdb store not built yet: using memory", {});
      return std::make_unique<store::MemoryInboxStore>(policy);
    case config::StoreKind::redis:
      throw config::ConfigError("store=redis is not available in this build yet");
  }
  return nullptr;
}

}  // namespace herald::server
