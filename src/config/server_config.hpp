#pragma once
// Every option of `herald serve`, with its default. The option table in
// config_options.cpp names each one for TOML, the environment and flags;
// docs/configuration.md is checked against that table by a test.
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace herald::config {

using std::chrono::milliseconds;

enum class StoreKind { memory, rocksdb, redis };
enum class SyncPolicy { always, batch, none };

struct ServerConfig {
  // ---- network
  std::string listen = "127.0.0.1:8080";  // loopback by default: exposing is a deliberate act
  std::string ready_file;                 // PROTOCOL.md 9: written once listening
  int io_threads = 0;                     // 0: one per core
  std::vector<std::string> allowed_origins;  // empty: any Origin

  // ---- storage
  std::string data_dir = "./herald-data";
  StoreKind store = StoreKind::rocksdb;  // embedded default, nothing else to run
  SyncPolicy sync = SyncPolicy::always;  // a 200 means on disk
  milliseconds sync_batch{5};            // bounded fsync delay under sync=batch
  std::string redis_url;                   // redis://host:port or redis+cluster://host:port,...
  std::string redis_prefix = "herald:";    // before every Redis key: deployments may share a Redis
  std::string node_id;  // empty: host name
  bool node_id_defaulted = false;  // node_id is the host name: none was configured
  bool drop_node_notifications = false;  // test switch: the catch-up pass alone must deliver
  std::uint64_t retention_max_messages = 10000;
  milliseconds retention_ttl{259200000};  // 72 h
  milliseconds dedup_window{86400000};    // 24 h
  std::size_t message_cache_bytes = 256u << 20;  // recent messages in memory; 0 turns the cache off
  std::size_t rocksdb_write_buffer_bytes = 128u << 20;  // all memtables together
  std::size_t rocksdb_block_cache_bytes = 64u << 20;

  // ---- auth
  std::string jwt_alg = "HS256";
  std::string jwt_secret;
  std::string jwt_public_key_file;
  std::string jwt_issuer;
  std::string jwt_audience;
  milliseconds jwt_leeway{30000};
  std::vector<std::string> api_keys;

  // ---- delivery and liveness (PROTOCOL.md 4, 5)
  milliseconds heartbeat{25000};
  milliseconds idle_timeout{75000};
  milliseconds ack_timeout{2000};
  milliseconds retry_initial{500};
  milliseconds retry_max{10000};
  std::uint32_t max_attempts = 4;
  std::uint32_t max_inflight = 64;

  // ---- limits
  std::size_t max_message_bytes = 65536;
  std::uint32_t max_connections_per_user = 16;
  std::uint32_t max_connections_per_ip = 10000;
  std::uint32_t max_connections = 1000000;
  std::size_t max_send_queue_bytes = 1048576;
  milliseconds send_timeout{30000};  // a write to a client stuck this long closes it 4009
  double client_frame_rate = 100;  // frames/s per connection, burst twice that
  double publish_rate = 0;         // requests/s per API key, 0 = no limit
  std::size_t max_http_body_bytes = 32u << 20;  // a full batch of small messages fits
  std::size_t max_batch_messages = 10000;       // PROTOCOL.md 7
  std::size_t max_publish_users = 1000;         // PROTOCOL.md 7
  std::size_t store_queue_max_messages = 100000;  // publishes waiting for the store; low shed at 50 %, normal at 80 %
  milliseconds handshake_timeout{10000};        // upgrade request must be complete by then
  milliseconds ws_park_after{2000};             // a connection silent this long drops its frame-layer state; 0: never
  milliseconds http_header_timeout{10000};      // slowloris guard on the API
  milliseconds http_idle_timeout{60000};        // keep-alive connection with no request
  std::size_t max_http_connections = 10000;

  // ---- shutdown
  milliseconds drain_timeout{10000};      // longest wait for writes to flush on SIGTERM
  milliseconds drain_retry_after{5000};   // upper bound of the jittered retry_after sent with 1001

  // ---- operations
  std::string log_level = "info";
  milliseconds wheel_tick{10};  // timer resolution; 10 ms is far below any protocol timeout
  bool demo = false;            // serve /demo
};

// A bad value or an unreadable file: `herald serve` prints what and exits non-zero.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace herald::config
