#include "server/store_factory.hpp"

#include "core/log.hpp"
#include <filesystem>

#include "store/memory/memory_inbox_store.hpp"
#include "store/rocksdb/rocksdb_inbox_store.hpp"

namespace herald::server {

namespace {

template <class Backend>
Stores own(std::unique_ptr<Backend> backend) {
  store::ScheduleStore& schedule = *backend;
  return Stores{std::move(backend), schedule};
}

}  // namespace

Stores make_store(const config::ServerConfig& c) {
  store::StorePolicy policy{c.retention_max_messages, c.retention_ttl.count(), c.dedup_window.count()};
  switch (c.store) {
    case config::StoreKind::memory:
      return own(std::make_unique<store::MemoryInboxStore>(policy));
    case config::StoreKind::rocksdb: {
      const auto path = std::filesystem::path(c.data_dir) / "inbox";
      std::error_code ec;
      std::filesystem::create_directories(path, ec);
      if (ec) throw std::runtime_error("data_dir " + path.string() + ": " + ec.message());
      const store::SyncMode sync = c.sync == config::SyncPolicy::always  ? store::SyncMode::always
                                   : c.sync == config::SyncPolicy::batch ? store::SyncMode::batch
                                                                         : store::SyncMode::none;
      return own(
          std::make_unique<store::RocksDbInboxStore>(path.string(), policy, sync, c.sync_batch));
    }
    case config::StoreKind::redis:
      throw config::ConfigError("store=redis is not available in this build yet");
  }
  throw config::ConfigError("unknown store kind");
}

}  // namespace herald::server
