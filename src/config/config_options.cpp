#include "config/config_options.hpp"

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <toml++/toml.h>

extern char** environ;

namespace herald::config {
namespace {

// ---- value parsers (each throws ConfigError naming the key) -----------------

std::int64_t parse_int(std::string_view key, std::string_view text, std::int64_t min,
                       std::int64_t max) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || p != text.data() + text.size()) {
    throw ConfigError(std::string(key) + ": expected an integer, got '" + std::string(text) + "'");
  }
  if (v < min || v > max) {
    throw ConfigError(std::string(key) + ": " + std::string(text) + " is out of range [" +
                      std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return v;
}

double parse_double(std::string_view key, std::string_view text, double min) {
  try {
    std::size_t used = 0;
    const std::string s(text);
    const double v = std::stod(s, &used);
    if (used != s.size() || v < min) throw std::invalid_argument("range");
    return v;
  } catch (const std::exception&) {
    throw ConfigError(std::string(key) + ": expected a number >= " + std::to_string(min) +
                      ", got '" + std::string(text) + "'");
  }
}

bool parse_bool(std::string_view key, std::string_view text) {
  if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "0" || text == "no" || text == "off") return false;
  throw ConfigError(std::string(key) + ": expected true or false, got '" + std::string(text) + "'");
}

std::vector<std::string> parse_list(std::string_view text) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in{std::string(text)};
  while (std::getline(in, item, ',')) {
    const auto b = item.find_first_not_of(" \t");
    const auto e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

constexpr std::int64_t kMaxMs = 365LL * 24 * 3600 * 1000;

// Row builders keep the table one line per option.
template <typename T>
OptionSpec str(std::string key, std::string def, std::string help, T ServerConfig::*field) {
  return {key, std::move(def), std::move(help),
          [field](ServerConfig& c, std::string_view v) { c.*field = std::string(v); }};
}

OptionSpec ms(std::string key, std::string def, std::string help,
              std::chrono::milliseconds ServerConfig::*field, std::int64_t min = 1) {
  return {key, std::move(def), std::move(help),
          [key, field, min](ServerConfig& c, std::string_view v) {
            c.*field = std::chrono::milliseconds(parse_int(key, v, min, kMaxMs));
          },
          std::to_string(min) + " to " + std::to_string(kMaxMs) + " (a year)"};
}

template <typename T>
OptionSpec num(std::string key, std::string def, std::string help, T ServerConfig::*field,
               std::int64_t min, std::int64_t max) {
  return {key, std::move(def), std::move(help),
          [key, field, min, max](ServerConfig& c, std::string_view v) {
            c.*field = static_cast<T>(parse_int(key, v, min, max));
          },
          std::to_string(min) + " to " + std::to_string(max)};
}

OptionSpec list(std::string key, std::string def, std::string help,
                std::vector<std::string> ServerConfig::*field) {
  return {key, std::move(def), std::move(help),
          [field](ServerConfig& c, std::string_view v) { c.*field = parse_list(v); }};
}

std::vector<OptionSpec> build_table() {
  using C = ServerConfig;
  std::vector<OptionSpec> t;
  t.push_back(str("listen", "127.0.0.1:8080", "host:port for HTTP and WebSocket; port 0 picks a free port", &C::listen));
  t.push_back(str("ready_file", "", "once listening and the store answers, write {\"url\",\"pid\"} here (atomically)", &C::ready_file));
  t.push_back(num("io_threads", "0", "I/O threads, each owning its connections; 0 = one per core", &C::io_threads, 0, 256));
  t.push_back(list("allowed_origins", "", "comma-separated Origin values accepted on /v1/ws (403 otherwise); empty accepts any", &C::allowed_origins));
  t.push_back(str("data_dir", "./herald-data", "data directory (inboxes, generated secrets)", &C::data_dir));
  t.push_back({"store", "rocksdb", "inbox store: memory, rocksdb or redis", [](C& c, std::string_view v) {
                 if (v == "memory") c.store = StoreKind::memory;
                 else if (v == "rocksdb") c.store = StoreKind::rocksdb;
                 else if (v == "redis") c.store = StoreKind::redis;
                 else throw ConfigError("store: expected memory, rocksdb or redis, got '" + std::string(v) + "'");
               }});
  t.push_back({"sync", "always", "durability before a publish gets 200: always, batch or none", [](C& c, std::string_view v) {
                 if (v == "always") c.sync = SyncPolicy::always;
                 else if (v == "batch") c.sync = SyncPolicy::batch;
                 else if (v == "none") c.sync = SyncPolicy::none;
                 else throw ConfigError("sync: expected always, batch or none, got '" + std::string(v) + "'");
               }});
  t.push_back(ms("sync_batch_ms", "5", "longest fsync delay under sync=batch", &C::sync_batch));
  t.push_back(str("redis_url", "", "redis://host:port (standalone) or redis+cluster://host:port,host:port (Redis Cluster seed nodes) for the redis store; a password as redis://:password@host:port or redis://user:password@host:port (ACL user), percent-encoded, sent with AUTH and never logged", &C::redis_url));
  t.push_back(str("redis_prefix", "herald:", "prefix of every Redis key of the redis store (no braces)", &C::redis_prefix));
  t.push_back(str("node_id", "(host name)", "this node's name in presence", &C::node_id));
  t.push_back({"drop_node_notifications", "false", "test switch: send no notifications to the other nodes (redis store), so only the catch-up pass delivers their devices", [](C& c, std::string_view v) {
                 c.drop_node_notifications = parse_bool("drop_node_notifications", v);
               }});
  t.push_back(num("retention_max_messages", "10000", "messages kept per user inbox; oldest trimmed first", &C::retention_max_messages, 1, 100000000));
  t.push_back(ms("retention_ttl_ms", "259200000", "default message TTL (72 h)", &C::retention_ttl));
  t.push_back(ms("dedup_window_ms", "86400000", "idempotency window of a publish id (24 h)", &C::dedup_window));
  t.push_back(num("message_cache_bytes", "268435456", "memory for recent messages in front of the disk store (256 MiB); 0 turns it off", &C::message_cache_bytes, 0, 1LL << 40));
  t.push_back(num("rocksdb_write_buffer_bytes", "134217728", "rocksdb store: memory for all memtables together (128 MiB); a full memtable is flushed to disk", &C::rocksdb_write_buffer_bytes, 1LL << 20, 1LL << 40));
  t.push_back(num("rocksdb_block_cache_bytes", "67108864", "rocksdb store: block cache shared by its column families (64 MiB)", &C::rocksdb_block_cache_bytes, 1LL << 20, 1LL << 40));
  t.push_back(str("jwt_alg", "HS256", "the only JWT algorithm accepted: HS256, RS256 or ES256", &C::jwt_alg));
  t.push_back(str("jwt_secret", "(generated)", "HS256 secret; generated into DATA_DIR/secrets.toml when unset, with a warning", &C::jwt_secret));
  t.push_back(str("jwt_public_key_file", "", "PEM public key file for RS256/ES256", &C::jwt_public_key_file));
  t.push_back(str("jwt_issuer", "", "required iss claim when set", &C::jwt_issuer));
  t.push_back(str("jwt_audience", "", "required aud claim when set", &C::jwt_audience));
  t.push_back(ms("jwt_leeway_ms", "30000", "clock leeway for exp/nbf", &C::jwt_leeway, 0));
  t.push_back(list("api_keys", "(generated)", "comma-separated keys for the HTTP API; generated into DATA_DIR/secrets.toml when unset, with a warning", &C::api_keys));
  t.push_back(ms("heartbeat_ms", "25000", "heartbeat_ms in welcome; server WebSocket ping after this much silence", &C::heartbeat));
  t.push_back(ms("idle_timeout_ms", "75000", "close 4008 after this long with nothing from the client", &C::idle_timeout));
  t.push_back(ms("ack_timeout_ms", "2000", "first redelivery after this long without an ack", &C::ack_timeout));
  t.push_back(ms("retry_initial_ms", "500", "redelivery backoff start (x2 each time, +/-20 % jitter)", &C::retry_initial));
  t.push_back(ms("retry_max_ms", "10000", "redelivery backoff cap", &C::retry_max));
  t.push_back(num("max_attempts", "4", "sends of one message on one connection before 4008", &C::max_attempts, 1, 1000));
  t.push_back(num("max_inflight", "64", "unacknowledged messages per connection", &C::max_inflight, 1, 65536));
  t.push_back(num("max_message_bytes", "65536", "largest publish data (413) and largest client frame (1009)", &C::max_message_bytes, 64, 64LL << 20));
  t.push_back(num("max_connections_per_user", "16", "429 before the upgrade beyond this many connections of one user", &C::max_connections_per_user, 1, 1000000));
  t.push_back(num("max_connections_per_ip", "10000", "429 before the upgrade beyond this many connections from one IP", &C::max_connections_per_ip, 1, 100000000));
  t.push_back(num("max_connections", "1000000", "429 before the upgrade beyond this many connections in total", &C::max_connections, 1, 100000000));
  t.push_back(num("max_send_queue_bytes", "1048576", "bytes queued to one client; new messages wait while it is full, and a frame that cannot wait (a redelivery, a pong) closes a client that stopped reading with 4009", &C::max_send_queue_bytes, 1024, 1LL << 32));
  t.push_back(ms("send_timeout_ms", "30000", "a frame to a client that waits this long for the socket (the client stopped reading and the kernel's buffers are full) closes it with 4009; checked with the heartbeat, so within this plus heartbeat_ms", &C::send_timeout, 1000));
  t.push_back({"client_frame_rate", "100", "frames per second one connection may send (burst twice that) before close 4029",
               [](C& c, std::string_view v) { c.client_frame_rate = parse_double("client_frame_rate", v, 0.001); },
               "0.001 or more"});
  t.push_back({"publish_rate", "0", "publish requests per second per API key before 429 with Retry-After (0: no limit)",
               [](C& c, std::string_view v) { c.publish_rate = parse_double("publish_rate", v, 0); },
               "0 or more"});
  t.push_back(num("max_http_body_bytes", "33554432", "largest HTTP request body (413 beyond)", &C::max_http_body_bytes, 1024, 1LL << 32));
  t.push_back(num("store_queue_max_messages", "100000", "messages waiting for the store before publishes are refused with 429 (low priority past 50 %, normal past 80 %, high when full; each message of a batch by its own priority)", &C::store_queue_max_messages, 1, 100000000));
  t.push_back(ms("handshake_timeout_ms", "10000", "the WebSocket upgrade answer must be written within this (the request itself is bound by http_header_timeout_ms)", &C::handshake_timeout));
  t.push_back(ms("ws_park_after_ms", "2000", "a WebSocket silent both ways this long parks: it drops its frame-layer state (about 3 KB) until the client sends or there is something to send; 0 never parks", &C::ws_park_after, 0));
  t.push_back(ms("http_header_timeout_ms", "10000", "an HTTP request must be complete within this (slow clients do not hold sockets)", &C::http_header_timeout));
  t.push_back(ms("http_idle_timeout_ms", "60000", "a keep-alive HTTP connection with no request is closed after this", &C::http_idle_timeout));
  t.push_back(num("max_http_connections", "10000", "open HTTP connections, WebSocket upgrades in progress included; one more is answered 429 too_many_connections and closed", &C::max_http_connections, 1, 10000000));
  t.push_back(ms("drain_timeout_ms", "10000", "longest graceful-shutdown wait for pending writes", &C::drain_timeout, 0));
  t.push_back(ms("drain_retry_after_ms", "5000", "upper bound of the jittered retry_after sent with close 1001", &C::drain_retry_after, 0));
  t.push_back(str("log_level", "info", "trace, debug, info, warn, error", &C::log_level));
  t.push_back(ms("wheel_tick_ms", "10", "timer wheel resolution", &C::wheel_tick));
  t.push_back({"demo", "false", "serve the /demo page, which mints tokens and publishes without a key (local trials only; needs jwt_alg HS256)", [](C& c, std::string_view v) { c.demo = parse_bool("demo", v); }});
  return t;
}

std::string toml_to_text(std::string_view key, const toml::node& node) {
  if (auto s = node.value<std::string>()) return *s;
  if (node.is_integer()) return std::to_string(*node.value<std::int64_t>());
  if (node.is_floating_point()) {
    std::ostringstream o;
    o << *node.value<double>();
    return o.str();
  }
  if (node.is_boolean()) return *node.value<bool>() ? "true" : "false";
  if (auto* arr = node.as_array()) {
    std::string out;
    for (const auto& item : *arr) {
      if (!out.empty()) out += ',';
      out += toml_to_text(key, item);
    }
    return out;
  }
  throw ConfigError(std::string(key) + ": unsupported TOML value type");
}

const OptionSpec* find_option(std::string_view key) {
  for (const auto& o : option_table()) {
    if (o.key == key) return &o;
  }
  return nullptr;
}

}  // namespace

const std::vector<OptionSpec>& option_table() {
  static const std::vector<OptionSpec> table = build_table();
  return table;
}

std::string env_name(std::string_view key) {
  std::string out = "HERALD_";
  for (char ch : key) out += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return out;
}

std::string flag_name(std::string_view key) {
  std::string out = "--";
  for (char ch : key) out += ch == '_' ? '-' : ch;
  return out;
}

void apply_toml(ServerConfig& c, std::string_view text, const std::string& source) {
  toml::table doc;
  try {
    doc = toml::parse(text, std::string_view(source));
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << source << ": " << e.description() << " (line " << e.source().begin.line << ")";
    throw ConfigError(msg.str());
  }
  for (const auto& [k, node] : doc) {
    const auto* opt = find_option(k.str());
    if (opt == nullptr) throw ConfigError(source + ": unknown option '" + std::string(k.str()) + "'");
    opt->apply(c, toml_to_text(k.str(), node));
  }
}

ServerConfig load_config(const std::string& config_file, const FlagValues& flags,
                         const std::map<std::string, std::string>* env) {
  ServerConfig c;
  if (!config_file.empty()) {
    std::ifstream in(config_file, std::ios::binary);
    if (!in) throw ConfigError(config_file + ": cannot read the file");
    std::ostringstream text;
    text << in.rdbuf();
    apply_toml(c, text.str(), config_file);
  }
  std::map<std::string, std::string> process_env;
  if (env == nullptr) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string_view kv(*e);
      const auto eq = kv.find('=');
      if (eq != std::string_view::npos && kv.starts_with("HERALD_")) {
        process_env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
      }
    }
    env = &process_env;
  }
  for (const auto& opt : option_table()) {
    if (auto it = env->find(env_name(opt.key)); it != env->end()) opt.apply(c, it->second);
  }
  for (const auto& [k, v] : flags) {
    const auto* opt = find_option(k);
    if (opt == nullptr) throw ConfigError("unknown option '" + k + "'");
    opt->apply(c, v);
  }
  validate(c);
  return c;
}

void validate(const ServerConfig& c) {
  const auto colon = c.listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == c.listen.size()) {
    throw ConfigError("listen: expected host:port, got '" + c.listen + "'");
  }
  {
    std::string_view port(c.listen);
    port.remove_prefix(colon + 1);
    int p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc{} || ptr != port.data() + port.size() || p < 0 || p > 65535) {
      throw ConfigError("listen: bad port in '" + c.listen + "'");
    }
  }
  if (c.jwt_alg != "HS256" && c.jwt_alg != "RS256" && c.jwt_alg != "ES256") {
    throw ConfigError("jwt_alg: expected HS256, RS256 or ES256, got '" + c.jwt_alg + "'");
  }
  if (c.jwt_alg != "HS256" && c.jwt_public_key_file.empty()) {
    throw ConfigError("jwt_alg " + c.jwt_alg + " needs jwt_public_key_file");
  }
  if (c.demo && c.jwt_alg != "HS256") {
    // The demo page's tokens are minted with the HS256 secret.
    throw ConfigError("demo needs jwt_alg HS256 (the /demo page mints its tokens with jwt_secret)");
  }
  if (c.log_level != "trace" && c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" &&
      c.log_level != "error") {
    throw ConfigError("log_level: expected trace, debug, info, warn or error, got '" + c.log_level + "'");
  }
  if (c.store == StoreKind::redis && c.redis_url.empty()) {
    throw ConfigError("store=redis needs redis_url (HERALD_REDIS_URL=redis://host:port)");
  }
  if (!c.redis_url.empty() && !c.redis_url.starts_with("redis://") &&
      !c.redis_url.starts_with("redis+cluster://")) {
    // Only the scheme: the rest may hold a password.
    const auto scheme = c.redis_url.substr(0, c.redis_url.find("://"));
    throw ConfigError("redis_url: expected redis://host:port or redis+cluster://host:port,..., got scheme '" +
                      scheme + "'");
  }
  if (c.retry_max < c.retry_initial) {
    throw ConfigError("retry_max_ms must be >= retry_initial_ms");
  }
  if (c.data_dir.empty()) throw ConfigError("data_dir must not be empty");
}

}  // namespace herald::config
