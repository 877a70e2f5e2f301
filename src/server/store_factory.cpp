#include "server/store_factory.hpp"

#include "core/log.hpp"
#include <filesystem>

#include "store/memory/memory_inbox_store.hpp"
#include "store/redis/redis_inbox_store.hpp"
#include "store/rocksdb/rocksdb_inbox_store.hpp"

namespace herald::server {

namespace {

template <class Backend>
Stores own(std::unique_ptr<Backend> backend) {
  store::ScheduleStore& schedule = *backend;
  return Stores{std::move(backend), schedule};
}

// Pipeline depth: 1 (a lone read) to a full publish batch of 10000.
std::vector<double> pipeline_depth_buckets() {
  std::vector<double> b;
  for (double v = 1; v <= 16384; v *= 4) b.push_back(v);
  return b;
}

Stores open_redis(const config::ServerConfig& c, store::StorePolicy policy, metrics::Registry& registry) {
  store::RedisEndpoints endpoints;
  try {
    endpoints = store::parse_redis_url(c.redis_url);
  } catch (const std::invalid_argument& e) {
    throw config::ConfigError(e.what());
  }
  store::RedisStoreOptions options;
  options.key_prefix = c.redis_prefix;
  auto& depth = registry.histogram("herald_redis_pipeline_depth", "Commands per Redis round trip",
                                   pipeline_depth_buckets());
  options.link.on_round_trip = [&depth](std::size_t n) { depth.observe(static_cast<double>(n)); };
  std::unique_ptr<store::RedisInboxStore> backend;
  try {
    backend = std::make_unique<store::RedisInboxStore>(std::move(endpoints), policy, std::move(options));
  } catch (const std::invalid_argument& e) {
    throw config::ConfigError(e.what());
  }
  const store::RedisLinkStats* stats = &backend->link_stats();
  const auto counter = [&](const char* name, const char* help, const std::atomic<std::uint64_t>& v) {
    registry.counter_fn(name, help, [&v] { return static_cast<double>(v.load(std::memory_order_relaxed)); });
  };
  counter("herald_redis_round_trips_total", "Pipelines written to Redis and answered", stats->round_trips);
  counter("herald_redis_commands_total", "Redis commands answered", stats->commands);
  counter("herald_redis_errors_total", "Redis commands unanswered or answered with an error", stats->errors);
  counter("herald_redis_reconnects_total", "Connections to Redis made again after a failed connect",
          stats->reconnects);
  counter("herald_redis_connect_failures_total", "Failed connects to Redis", stats->connect_failures);
  counter("herald_redis_redirects_total", "Redis Cluster MOVED and ASK redirections followed", stats->redirects);
  if (!backend->healthy()) {
    log::warn("redis is not reachable yet; not ready until it is",
              {{"redis_url", store::redact_redis_url(c.redis_url)}});
  } else if (const auto persistence = backend->persistence()) {
    // A 200 means what Redis' AOF policy makes it mean (docs/storage.md).
    const char* wanted = c.sync == config::SyncPolicy::always  ? "appendonly=yes appendfsync=always"
                         : c.sync == config::SyncPolicy::batch ? "appendonly=yes appendfsync=everysec"
                                                               : nullptr;
    if (wanted != nullptr && *persistence != wanted &&
        !(c.sync == config::SyncPolicy::batch && *persistence == "appendonly=yes appendfsync=always")) {
      log::warn("redis persistence is weaker than sync asks: a 200 means what Redis keeps",
                {{"sync", c.sync == config::SyncPolicy::always ? "always" : "batch"},
                 {"redis", *persistence},
                 {"wanted", wanted}});
    }
  }
  return own(std::move(backend));
}

}  // namespace

Stores make_store(const config::ServerConfig& c, metrics::Registry& registry) {
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
      auto rocks = std::make_unique<store::RocksDbInboxStore>(
          path.string(), policy, sync, c.sync_batch, store::RocksDbInboxStore::kDefaultMaxDeadLetters,
          store::kDefaultMaxScheduled, store::RocksDbMemory{c.rocksdb_write_buffer_bytes, c.rocksdb_block_cache_bytes});
      registry.gauge_fn("herald_store_cached_inboxes", "Inboxes whose state the store holds in memory",
                        [s = rocks.get()] { return static_cast<double>(s->cached_inboxes()); });
      registry.counter_fn("herald_store_generated_id_lookups_total",
                          "Publishes whose id looks generated by the server but has no dedup entry, looked for among the user's retained messages",
                          [s = rocks.get()] { return static_cast<double>(s->generated_id_lookups()); });
      return own(std::move(rocks));
    }
    case config::StoreKind::redis:
      return open_redis(c, policy, registry);
  }
  throw config::ConfigError("unknown store kind");
}

}  // namespace herald::server
