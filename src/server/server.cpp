#include "server/server.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "api/api_handler.hpp"
#include "cluster/catch_up.hpp"
#include "cluster/node_id_claim.hpp"
#include "cluster/notify_channel.hpp"
#include "cluster/presence.hpp"
#include "auth/api_keys.hpp"
#include "auth/jwt.hpp"
#include "config/config_options.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "gateway/gateway_context.hpp"
#include "gateway/delayed_messages.hpp"
#include "gateway/publish_service.hpp"
#include "hub/recent_remote_connects.hpp"
#include "metrics/registry.hpp"
#include "server/store_factory.hpp"
#include "store/message_cache.hpp"
#include "core/thread_name.hpp"
#include "store/redis/redis_endpoints.hpp"
#include "transport/listener.hpp"
#include "web/web_assets.hpp"

namespace herald::server {
namespace asio = boost::asio;

namespace {

auth::JwtConfig jwt_config(const config::ServerConfig& c) {
  auth::JwtConfig j;
  j.alg = auth::parse_jwt_alg(c.jwt_alg).value_or(auth::JwtAlg::hs256);
  j.secret = c.jwt_secret;
  if (!c.jwt_public_key_file.empty()) {
    std::ifstream in(c.jwt_public_key_file);
    if (!in) throw config::ConfigError("jwt_public_key_file: cannot read " + c.jwt_public_key_file);
    std::stringstream ss;
    ss << in.rdbuf();
    j.public_key_pem = ss.str();
  }
  j.issuer = c.jwt_issuer;
  j.audience = c.jwt_audience;
  j.leeway = c.jwt_leeway;
  return j;
}

asio::ip::tcp::endpoint parse_listen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) throw config::ConfigError("listen: '" + host + "' is not an IP address");
  return {addr, static_cast<unsigned short>(std::stoi(listen.substr(colon + 1)))};
}

// Atomically: a temporary file beside it, then a rename (PROTOCOL.md 9).
// Throws std::runtime_error with one line saying what failed.
void write_ready_file(const std::string& path, const std::string& url) {
  boost::json::object o{{"url", url}, {"pid", static_cast<std::int64_t>(::getpid())}};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const auto fail = [&tmp](const std::string& what) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);  // no temporary file left behind
    throw std::runtime_error("ready_file: " + what);
  };
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) fail("cannot write " + tmp + ": " + std::strerror(errno));
    out << boost::json::serialize(o) << "\n";
    out.close();
    if (!out) fail("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) fail("cannot rename " + tmp + " to " + path + ": " + ec.message());
}

// Before anything starts: a ready file that cannot be written is bad
// configuration (exit 2 with one line), not a failure after listening.
// Every connection is a descriptor, and the soft limit is often 1024 while
// the hard one allows far more: take what the hard limit allows, as nginx
// (worker_rlimit_nofile) and Go programs do, and say so when even that is
// below the configured HTTP connection limit.
void raise_open_file_limit(std::size_t max_http_connections) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  // Room for the store's files, the listener and the threads besides.
  constexpr rlim_t kReserve = 256;
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < max_http_connections + kReserve) {
    log::warn("the open file limit is below max_http_connections: connections beyond it wait unaccepted "
              "(herald_accept_errors_total); raise it (ulimit -n, LimitNOFILE=)",
              {{"limit", static_cast<std::uint64_t>(lim.rlim_cur)},
               {"max_http_connections", max_http_connections}});
  }
}

void check_ready_file_path(const std::string& path) {
  if (path.empty()) return;
  const std::filesystem::path p(path);
  const std::filesystem::path dir = p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    throw config::ConfigError("ready_file: directory " + dir.string() + " does not exist");
  }
  if (std::filesystem::is_directory(p, ec)) throw config::ConfigError("ready_file: " + path + " is a directory");
  if (::access(dir.c_str(), W_OK) != 0) {
    throw config::ConfigError("ready_file: directory " + dir.string() + " is not writable: " + std::strerror(errno));
  }
}

}  // namespace

struct Server::Impl {
  config::ServerConfig config;
  metrics::Registry registry;
  gateway::GatewayMetrics metrics{registry};
  std::unique_ptr<store::InboxStore> backend;     // the configured store
  std::unique_ptr<store::MessageCache> cache;     // in front of a disk backend
  store::InboxStore* store = nullptr;             // what everything uses: cache or backend
  std::unique_ptr<store::StoreWorker> store_worker;
  hub::Hub hub;
  hub::RecentRemoteConnects recent_remote_connects;  // store=redis: devices just connected elsewhere
  auth::JwtVerifier jwt;
  auth::ApiKeys keys;
  gateway::ConnectionLimits limits;
  // store=redis: devices on every node. Before the workers: connections
  // that end as the server is destroyed still report to it.
  std::unique_ptr<cluster::Presence> presence;
  std::vector<std::unique_ptr<transport::IoWorker>> workers;
  std::unique_ptr<gateway::GatewayContext> ctx;
  std::unique_ptr<gateway::PublishService> publisher;
  std::unique_ptr<gateway::DelayedMessages> delayed;
  std::unique_ptr<api::ApiHandler> api;
  std::unique_ptr<transport::Listener> listener;
  std::unique_ptr<cluster::NotifyChannel> notify_channel;  // store=redis: the other nodes
  std::unique_ptr<cluster::CatchUp> catch_up;              // store=redis: bound on a lost notification
  SteadyClock::time_point next_heartbeat{};
  std::string url;

  // Background housekeeping: scheduled messages and TTL expiry, in bounded
  // slices so it never stalls delivery.
  std::thread housekeeper;
  std::mutex hk_mu;
  std::condition_variable hk_cv;
  bool hk_stop = false;
  // The backlog census: every kCensusIntervalMs, slices of kCensusUsersPerSlice
  // users until kCensusBudget is spent; the gauges are set at the end of each
  // pass (housekeeper thread only). A time budget, not a user count: a user
  // costs ~10 us to count under write load (its cursors' versions are
  // skipped one by one), and a pass of 1000 users per 100 ms had taken a
  // tenth of the server's CPU at 10k users. Now at most 2 % of one core; a
  // small store is still counted within one slice.
  static constexpr std::size_t kCensusUsersPerSlice = 32;
  static constexpr std::int64_t kCensusIntervalMs = 100;
  static constexpr auto kCensusBudget = std::chrono::milliseconds(2);
  std::string census_position;
  std::uint64_t census_messages = 0;
  std::uint64_t census_users = 0;
  std::int64_t census_next_ms = 0;
  std::atomic<bool> started{false};
  std::atomic<bool> stopped{false};
  // The ready file is written once listening and ready (PROTOCOL.md 9):
  // with the store unreachable at start, by the housekeeper when it answers.
  std::atomic<bool> ready_file_pending{false};
  SteadyClock::time_point next_ready_check{};

  void write_ready_file_once_ready() {
    if (!store->healthy()) return;
    ready_file_pending = false;
    try {
      write_ready_file(config.ready_file, url);
      log::info("store reachable: ready file written", {{"path", config.ready_file}});
    } catch (const std::exception& e) {
      log::error(e.what(), {});
    }
  }

  explicit Impl(config::ServerConfig c)
      : config(std::move(c)),
        jwt(jwt_config(config)),
        keys(config.api_keys),
        limits(config.max_connections, config.max_connections_per_ip) {}

  void run_census_slices() {
    const auto until = SteadyClock::now() + kCensusBudget;
    do {
      const auto slice = store->scan_backlog(census_position, kCensusUsersPerSlice);
      census_messages += slice.messages;
      census_users += slice.users_behind;
      census_position = slice.position;
      if (census_position.empty()) {
        ctx->metrics.offline_backlog_messages.set(static_cast<std::int64_t>(census_messages));
        ctx->metrics.offline_backlog_users.set(static_cast<std::int64_t>(census_users));
        census_messages = 0;
        census_users = 0;
        return;  // the next pass starts with the next interval
      }
    } while (SteadyClock::now() < until);
  }

  void run_housekeeper() {
    std::unique_lock lock(hk_mu);
    while (!hk_stop) {
      hk_cv.wait_for(lock, std::chrono::milliseconds(20));
      if (hk_stop) break;
      lock.unlock();
      const std::int64_t now = unix_ms_now();
      delayed->release_due(now);
      store->expire(now, 1000);
      store->release_idle(now);
      if (now >= census_next_ms) {
        census_next_ms = now + kCensusIntervalMs;
        run_census_slices();
      }
      if (catch_up) catch_up->tick();
      if (ready_file_pending.load(std::memory_order_relaxed) && SteadyClock::now() >= next_ready_check) {
        next_ready_check = SteadyClock::now() + std::chrono::milliseconds(200);
        write_ready_file_once_ready();
      }
      if (presence && SteadyClock::now() >= next_heartbeat) {
        presence->heartbeat();
        next_heartbeat = SteadyClock::now() + std::chrono::seconds(1);
      }
      lock.lock();
    }
  }
};

Server::Server(config::ServerConfig config) {
  config::validate(config);
  check_ready_file_path(config.ready_file);
  impl_ = std::make_unique<Impl>(std::move(config));
  auto& d = *impl_;
  const auto& cfg = d.config;
  log::set_level(cfg.log_level);
  if (cfg.heartbeat >= cfg.idle_timeout) {
    // Allowed (tests shorten the idle timeout alone), but a client that
    // pings every heartbeat_ms, as PROTOCOL.md 5 says, is closed 4008.
    log::warn("heartbeat_ms is not below idle_timeout_ms: a client pinging every heartbeat_ms is closed 4008 "
              "between two pings",
              {{"heartbeat_ms", std::to_string(cfg.heartbeat.count())},
               {"idle_timeout_ms", std::to_string(cfg.idle_timeout.count())}});
  }

  if (cfg.jwt_alg == "HS256" && cfg.jwt_secret.size() < 32) {
    // RFC 7518 3.2: a key of at least the hash's size (256 bits).
    log::warn("jwt_secret is shorter than 32 bytes: tokens signed with it can be forged by brute force",
              {{"bytes", cfg.jwt_secret.size()}});
  }
  raise_open_file_limit(cfg.max_http_connections);

  Stores stores = make_store(cfg, d.registry);
  d.backend = std::move(stores.inbox);
  d.store = d.backend.get();
  if (cfg.store == config::StoreKind::rocksdb && cfg.message_cache_bytes > 0) {
    // The live path reads recent messages from memory, not disk. Not in front
    // of redis: other nodes append to the same inboxes (store/message_cache.hpp).
    d.cache = std::make_unique<store::MessageCache>(
        *d.backend,
        store::StorePolicy{cfg.retention_max_messages, cfg.retention_ttl.count(), cfg.dedup_window.count()},
        cfg.message_cache_bytes);
    d.store = d.cache.get();
    d.registry.counter_fn("herald_message_cache_hits_total", "Inbox reads answered from memory",
                          [&d] { return static_cast<double>(d.cache->stats().hits); });
    d.registry.counter_fn("herald_message_cache_misses_total", "Inbox reads that went to the store",
                          [&d] { return static_cast<double>(d.cache->stats().misses); });
    d.registry.gauge_fn("herald_message_cache_bytes", "Bytes of recent messages held in memory",
                        [&d] { return static_cast<double>(d.cache->stats().bytes); });
  }
  d.store_worker = std::make_unique<store::StoreWorker>(
      *d.store, cfg.store_queue_max_messages, [&d](std::size_t n, double seconds) {
        d.metrics.group_commit_size.observe(static_cast<double>(n));
        d.metrics.store_append_latency.observe(seconds);
      });

  const int threads = cfg.io_threads > 0 ? cfg.io_threads
                                         : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  for (int i = 0; i < threads; ++i) {
    d.workers.push_back(std::make_unique<transport::IoWorker>(static_cast<std::size_t>(i), cfg.wheel_tick));
  }

  delivery::RetryPolicy retry{cfg.ack_timeout, cfg.retry_initial, cfg.retry_max, cfg.max_attempts, 0.2};
  d.ctx.reset(new gateway::GatewayContext{cfg, *d.store, d.hub, d.jwt, d.metrics, d.limits, retry, {}, {}});
  for (auto& w : d.workers) {
    d.ctx->flushers.push_back(std::make_unique<gateway::CursorFlusher>(
        *d.store, *w, std::chrono::milliseconds(100), &d.metrics.cursor_commits));
  }
  if (cfg.store == config::StoreKind::redis) {
    // Nodes sharing Redis push each other's publishes to their own
    // connections: only the nodes that hold the user, found in presence
    // (docs/cluster.md "Routing").
    // First, before anything is written under this node's name: is it free?
    const auto claim = cluster::claim_node_id(store::parse_redis_url(cfg.redis_url), cfg.redis_prefix, cfg.node_id,
                                              cfg.node_id_defaulted);
    if (claim.renamed) {
      log::warn("the host name, the default node_id, is in use by another live node on this Redis; "
                "this node takes another name (set HERALD_NODE_ID to choose it)",
                {{"host_name", cfg.node_id}, {"node_id", claim.node_id}});
      d.config.node_id = claim.node_id;
    }
    d.notify_channel = std::make_unique<cluster::NotifyChannel>(
        store::parse_redis_url(cfg.redis_url), cfg.redis_prefix, cfg.node_id,
        [&d](const std::vector<std::string>& users) {
          for (const auto& u : users) d.hub.notify(u);
        },
        [&d](const std::string& user, const std::string& device, std::int64_t connected_at_ms,
             std::uint64_t attempt_session, std::uint64_t attempt_n, const std::string& conn_id) {
          hub::ConnectStamp remote{{attempt_session, attempt_n}, connected_at_ms, conn_id};
          // Remembered before the hub is read (hub/recent_remote_connects.hpp).
          d.recent_remote_connects.remember(user, device, remote, unix_ms_now());
          for (const auto& c : d.hub.connections(user)) {
            if (c->device() != device) continue;
            const auto info = c->info();
            if (hub::remote_connection_replaces({c->attempt(), info.connected_at_ms, info.conn_id}, remote)) {
              c->kick(CloseReason::replaced);
            } else if (!info.closing && d.presence) {
              // This one stays; the other node's entry may have overwritten its own.
              d.presence->connected(user, device, info.conn_id, info.connected_at_ms);
            }
          }
        },
        [&d](const std::string& user, const std::optional<std::string>& device) {
          for (const auto& c : d.hub.connections(user)) {
            if (!device || c->device() == *device) c->kick(CloseReason::kicked);
          }
        });
    if (!cfg.drop_node_notifications) {
      d.ctx->remote_notify = [&d](std::span<const std::string> users) { d.notify_channel->publish(users); };
    }
    d.ctx->remote_replace = [&d](const std::string& user, const std::string& device, const hub::ConnectStamp& s) {
      d.notify_channel->publish_replace(user, device, s.at_ms, s.attempt.session, s.attempt.n, s.conn_id);
    };
    d.ctx->replaced_by_remote = [&d](const std::string& user, const std::string& device,
                                     const hub::ConnectStamp& s) {
      return d.recent_remote_connects.replaced_by_remote(user, device, s, unix_ms_now());
    };
    d.ctx->remote_kick = [&d](const std::string& user, const std::optional<std::string>& device) {
      return d.notify_channel->publish_kick(user, device);
    };
    d.catch_up = std::make_unique<cluster::CatchUp>(d.hub, *d.store);
    d.presence = std::make_unique<cluster::Presence>(store::parse_redis_url(cfg.redis_url), cfg.redis_prefix,
                                                     cfg.node_id);
    d.presence->heartbeat();
    d.ctx->presence = d.presence.get();
    d.registry.gauge_fn("herald_presence_pending_removals",
                        "Presence entries of ended connections whose removal failed (Redis down), retried every second",
                        [&d] { return static_cast<double>(d.presence->pending_removals()); });
    const auto& cs = d.catch_up->stats();
    d.registry.counter_fn("herald_catchup_users_checked_total", "Online users whose head seq the catch-up pass read",
                          [&cs] { return static_cast<double>(cs.users_checked.load()); });
    d.registry.counter_fn("herald_catchup_notified_total", "Connections the catch-up pass found behind (a notification was lost or late)",
                          [&cs] { return static_cast<double>(cs.notified.load()); });
    const auto& ns = d.notify_channel->stats();
    d.registry.counter_fn("herald_node_notifications_sent_total", "Notifications sent to another node's channel (one per node holding a notified user, per lookup)",
                          [&ns] { return static_cast<double>(ns.sent.load()); });
    d.registry.counter_fn("herald_node_notification_users_sent_total", "Users named in the notifications sent to other nodes",
                          [&ns] { return static_cast<double>(ns.users_sent.load()); });
    d.registry.counter_fn("herald_node_notify_lookups_total", "Presence lookups made for notifications (one per batch, per 500 users on a standalone Redis)",
                          [&ns] { return static_cast<double>(ns.lookups.load()); });
    d.registry.counter_fn("herald_node_notifications_failed_total", "Presence lookups or notification PUBLISHes that failed (Redis unreachable or erroring); catch-up delivers their messages",
                          [&ns] { return static_cast<double>(ns.failures.load()); });
    d.registry.counter_fn("herald_node_notify_dropped_total", "Users not queued for notification because the queue was full; catch-up delivers their messages",
                          [&ns] { return static_cast<double>(ns.dropped.load()); });
    d.registry.gauge_fn("herald_node_notify_queue_users", "Users waiting for the notifier thread",
                        [&ns] { return static_cast<double>(ns.queued.load()); });
    d.registry.counter_fn("herald_node_notifications_received_total", "Notifications received on this node's channel from other nodes",
                          [&ns] { return static_cast<double>(ns.received.load()); });
    d.registry.counter_fn("herald_node_notification_users_received_total", "Users named in the notifications received from other nodes",
                          [&ns] { return static_cast<double>(ns.users_received.load()); });
    d.registry.counter_fn("herald_node_replaces_received_total", "Device-connected notices received from other nodes (each may close a local connection of the device with 4011)",
                          [&ns] { return static_cast<double>(ns.replaces.load()); });
    d.notify_channel->observe_lag_with(&d.registry.histogram(
        "herald_node_notification_lag_seconds",
        "From a publish's users queued for the other nodes to the notification's receipt on this node",
        metrics::latency_buckets_seconds()));
    d.registry.gauge_fn("herald_node_notifications_subscribed", "1 while this node hears the other nodes (its own channel and the shared one)",
                        [&d] { return d.notify_channel->subscribed() ? 1.0 : 0.0; });
  }
  // Acks above a gap spare a message from the dead-letter log on the stores
  // that decide in C++ (docs/protocol.md "Acks above a gap").
  d.backend->set_acked_above_cursor([&ledger = d.ctx->attempts](std::string_view u, std::string_view dev,
                                                                std::uint64_t seq) {
    return ledger.acked_above_cursor(u, dev, seq);
  });
  d.publisher = std::make_unique<gateway::PublishService>(*d.ctx, *d.store_worker);
  d.delayed = std::make_unique<gateway::DelayedMessages>(*d.publisher, stores.schedule);
  d.api = std::make_unique<api::ApiHandler>(*d.ctx, *d.publisher, *d.delayed, d.keys,
                                            [&d] { return d.started.load(); });

  for (const auto& asset : web::web_assets()) {
    if (asset.demo_only && !cfg.demo) continue;  // /demo is 404 unless demo mode is on
    d.api->add_static(std::string(asset.path), std::string(asset.content_type), std::string(asset.body));
  }

  d.registry.gauge_fn("herald_store_queue_messages", "Messages waiting for the store worker",
                      [&d] { return static_cast<double>(d.store_worker->queued_messages()); });
  for (const auto& [index, name] : {std::pair{0, "high"}, std::pair{1, "normal"}, std::pair{2, "low"}}) {
    d.registry.counter_fn("herald_publish_shed_total", "Messages refused because the store queue was full for their priority",
                          [&d, i = index] { return static_cast<double>(d.store_worker->stats().shed[i]); },
                          {{"priority", name}});
  }
  d.registry.gauge_fn("herald_attempt_ledger_entries", "Unacked (device, seq) send counts kept for inspection",
                      [&d] { return static_cast<double>(d.ctx->attempts.entries()); });
  d.registry.gauge_fn("herald_attempt_ledger_acked_retries",
                      "Send counts kept after the ack for messages sent more than once (at most 65,536)",
                      [&d] { return static_cast<double>(d.ctx->attempts.acked_retries()); });
  d.registry.gauge_fn("herald_scheduled_messages", "Messages held for a future deliver_at",
                      [&d] { return static_cast<double>(d.delayed->pending()); });
  d.registry.gauge_fn("herald_users_online", "Users with at least one live connection",
                      [&d] { return static_cast<double>(d.hub.users()); });
  d.registry.counter_fn("herald_dead_letters_total", "Messages moved to the dead-letter log",
                        [&d] { return static_cast<double>(d.store->dead_letter_count()); });

  std::vector<transport::IoWorker*> raw;
  for (auto& w : d.workers) raw.push_back(w.get());
  transport::HttpLimits http_limits;
  http_limits.max_body_bytes = cfg.max_http_body_bytes;
  http_limits.header_timeout = cfg.http_header_timeout;
  http_limits.idle_timeout = cfg.http_idle_timeout;
  http_limits.max_connections = cfg.max_http_connections;
  try {
    d.listener = std::make_unique<transport::Listener>(raw, parse_listen(cfg.listen), *d.api, http_limits,
                                                       &d.metrics.http);
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error("listen " + cfg.listen + ": " + e.code().message());
  }
  const auto ep = d.listener->local_endpoint();
  std::string host = ep.address().is_unspecified() ? "127.0.0.1" : ep.address().to_string();
  if (ep.address().is_v6()) host = "[" + host + "]";
  d.url = "http://" + host + ":" + std::to_string(ep.port());
}

Server::~Server() {
  if (impl_ && impl_->started.load()) drain_and_stop();
}

const config::ServerConfig& Server::config() const { return impl_->config; }
std::string Server::url() const { return impl_->url; }

void Server::start() {
  auto& d = *impl_;
  for (auto& w : d.workers) w->start();
  for (std::size_t i = 0; i < d.workers.size(); ++i) {
    auto* flusher = d.ctx->flushers[i].get();
    asio::post(d.workers[i]->context(), [flusher] { flusher->start(); });
  }
  d.housekeeper = std::thread([&d] {
    set_thread_name("herald-housekeep");
    d.run_housekeeper();
  });
  if (d.notify_channel) d.notify_channel->start();
  d.listener->start();
  d.started = true;
  if (!d.config.ready_file.empty()) {
    if (d.store->healthy()) {
      write_ready_file(d.config.ready_file, d.url);  // throws: the caller exits with status 2
    } else {
      log::warn("store unreachable: the ready file is written once it answers", {{"path", d.config.ready_file}});
      d.ready_file_pending = true;
    }
  }
  log::info("herald listening", {{"url", d.url},
                                 {"node", d.config.node_id},
                                 {"io_threads", d.workers.size()},
                                 {"pid", static_cast<std::int64_t>(::getpid())}});
}

void Server::drain_and_stop() {
  auto& d = *impl_;
  if (d.stopped.exchange(true)) return;
  log::info("draining", {{"connections", d.hub.size()}});
  d.ctx->draining = true;  // readiness turns false first
  d.hub.for_each([](const auto& c) { c->kick(CloseReason::going_away); });
  const auto deadline = SteadyClock::now() + d.config.drain_timeout;
  while (d.hub.size() > 0 && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Until here new connections are accepted and answered 503 draining
  // (PROTOCOL.md 10), so a client can tell a drain from a dead node.
  d.listener->stop();
  {
    std::lock_guard lock(d.hk_mu);
    d.hk_stop = true;
  }
  d.hk_cv.notify_all();
  if (d.housekeeper.joinable()) d.housekeeper.join();
  d.store_worker->stop();  // appends already accepted finish first
  if (d.notify_channel) d.notify_channel->stop();
  // Cursors are flushed on graceful shutdown (PROTOCOL.md 10).
  for (std::size_t i = 0; i < d.workers.size(); ++i) {
    std::promise<void> done;
    auto fut = done.get_future();
    auto* flusher = d.ctx->flushers[i].get();
    asio::post(d.workers[i]->context(), [flusher, &done] {
      flusher->flush();
      done.set_value();
    });
    fut.wait_for(std::chrono::seconds(5));
  }
  for (auto& w : d.workers) w->stop();
  for (auto& w : d.workers) w->join();
  // Connections the drain deadline left open (a client that never answered
  // the close) hold Beast streams registered with their worker's
  // io_context: they must go while it exists, not with the hub after it.
  std::vector<std::shared_ptr<hub::LiveConnection>> left;
  d.hub.for_each([&left](const auto& c) { left.push_back(c); });
  for (const auto& c : left) d.hub.remove(*c);
  left.clear();
  log::info("stopped", {});
}

}  // namespace herald::server
