// The herald command: serve, publish, tail, token, bench.
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json.hpp>

#include "auth/jwt.hpp"
#include "bench_command.hpp"
#include "config/config_options.hpp"
#include "config/secrets.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "publish_command.hpp"
#include "server/server.hpp"
#include "tail_command.hpp"

namespace {

using namespace herald;

// Secrets for the client commands: flag, then environment, then the data
// directory's generated file (the same one `herald serve` writes).
std::string jwt_secret_for_cli(const std::string& flag, const std::string& data_dir) {
  if (!flag.empty()) return flag;
  if (const char* e = std::getenv("HERALD_JWT_SECRET"); e != nullptr && *e != '\0') return e;
  return config::read_stored_secrets(data_dir).jwt_secret;
}

std::string api_key_for_cli(const std::string& flag, const std::string& data_dir) {
  if (!flag.empty()) return flag;
  if (const char* e = std::getenv("HERALD_API_KEYS"); e != nullptr && *e != '\0') {
    std::string keys = e;
    return keys.substr(0, keys.find(','));
  }
  auto stored = config::read_stored_secrets(data_dir);
  return stored.api_keys.empty() ? std::string() : stored.api_keys.front();
}

std::string default_data_dir() {
  const char* e = std::getenv("HERALD_DATA_DIR");
  return e != nullptr && *e != '\0' ? e : "./herald-data";
}

std::string mint_token(const std::string& secret, const std::string& user, const std::string& device,
                       std::int64_t ttl_s, const std::string& iss, const std::string& aud) {
  boost::json::object claims;
  claims["sub"] = user;
  const std::int64_t now = unix_ms_now() / 1000;
  claims["iat"] = now;
  claims["exp"] = now + ttl_s;
  if (!device.empty()) claims["dev"] = device;
  if (!iss.empty()) claims["iss"] = iss;
  if (!aud.empty()) claims["aud"] = aud;
  return auth::sign_hs256(claims, secret);
}

int run_serve(const std::string& config_file, const config::FlagValues& flags) {
  config::ServerConfig cfg;
  try {
    cfg = config::load_config(config_file, flags);
    for (const auto& w : config::resolve_secrets(cfg)) log::warn(w, {});
  } catch (const config::ConfigError& e) {
    std::cerr << "herald: configuration error: " << e.what() << "\n";
    return 2;
  }
  std::unique_ptr<server::Server> srv;
  try {
    srv = std::make_unique<server::Server>(cfg);
  } catch (const std::exception& e) {
    std::cerr << "herald: cannot start: " << e.what() << "\n";
    return 2;
  }
  boost::asio::io_context signals_ctx;
  boost::asio::signal_set signals(signals_ctx, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code, int sig) {
    log::info("signal received, draining", {{"signal", sig}});
  });
  try {
    srv->start();
  } catch (const std::exception& e) {
    std::cerr << "herald: cannot start: " << e.what() << "\n";
    return 2;
  }
  const std::string url = srv->url();
  const std::string ws = "ws" + url.substr(4) + "/v1/ws";
  // The how-to lines are for a person at a terminal; under a supervisor
  // (docker, systemd) stdout holds nothing but the JSON log on stderr does.
  if (isatty(STDOUT_FILENO) != 0) std::cout << "Herald is running at " << url << " (node " << cfg.node_id << ", data in "
            << cfg.data_dir << ")\n"
            << "  connect:  herald tail --url " << ws << " --user alice --data-dir " << cfg.data_dir << "\n"
            << "  publish:  herald publish --url " << url << " --data-dir " << cfg.data_dir
            << " --user alice --data '{\"hello\":\"world\"}'\n"
            << "  token:    herald token --user alice --data-dir " << cfg.data_dir << "\n"
            << "  metrics:  " << url << "/metrics\n"
            << std::flush;
  signals_ctx.run();
  srv->drain_and_stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Herald: a reliable real-time push gateway"};
  app.require_subcommand(1);

  // ---- serve
  auto* serve = app.add_subcommand("serve", "Run the gateway");
  std::string config_file;
  serve->add_option("--config", config_file, "TOML configuration file")->check(CLI::ExistingFile);
  std::map<std::string, std::string> flag_storage;
  for (const auto& opt : config::option_table()) {
    auto* o = serve->add_option(config::flag_name(opt.key), flag_storage[opt.key],
                                opt.help + " (env " + config::env_name(opt.key) + ", default " + opt.default_text + ")");
    // A boolean option alone means true: `--demo` as well as `--demo false`.
    if (opt.default_text == "false" || opt.default_text == "true") o->expected(0, 1);
  }

  // ---- token
  auto* token = app.add_subcommand("token", "Mint a development JWT (HS256) from the configured secret");
  std::string t_user, t_device, t_secret, t_iss, t_aud, t_data = default_data_dir();
  std::int64_t t_ttl = 3600;
  token->add_option("--user", t_user, "sub claim")->required();
  token->add_option("--device", t_device, "dev claim");
  token->add_option("--ttl", t_ttl, "lifetime in seconds")->capture_default_str();
  token->add_option("--secret", t_secret, "HS256 secret (default: HERALD_JWT_SECRET, then DATA_DIR/secrets.toml)");
  token->add_option("--data-dir", t_data, "data directory holding secrets.toml")->capture_default_str();
  token->add_option("--issuer", t_iss, "iss claim");
  token->add_option("--audience", t_aud, "aud claim");

  // ---- publish
  auto* publish = app.add_subcommand("publish", "Publish one message over the HTTP API");
  cli::PublishOptions p;
  p.url = "http://127.0.0.1:8080";
  std::string p_key, p_data_dir = default_data_dir();
  std::int64_t p_ttl = 0, p_deliver_at = 0;
  publish->add_option("--url", p.url, "server base URL")->capture_default_str();
  publish->add_option("--api-key", p_key, "API key (default: HERALD_API_KEYS, then DATA_DIR/secrets.toml)");
  publish->add_option("--data-dir", p_data_dir, "data directory holding secrets.toml")->capture_default_str();
  publish->add_option("--user", p.user, "recipient user")->required();
  publish->add_option("--data", p.data_json, "JSON value")->required();
  publish->add_option("--event", p.event, "event name");
  publish->add_option("--id", p.id, "idempotency key");
  publish->add_option("--collapse-key", p.collapse_key, "collapse key");
  publish->add_option("--priority", p.priority, "high, normal or low");
  publish->add_option("--ttl-ms", p_ttl, "time to live in ms");
  publish->add_option("--deliver-at", p_deliver_at, "unix ms to deliver at");

  // ---- tail
  auto* tail = app.add_subcommand("tail", "Connect as a device and print messages as JSON lines");
  cli::TailOptions t;
  t.url = "ws://127.0.0.1:8080/v1/ws";
  std::string tl_user, tl_secret, tl_data = default_data_dir();
  std::uint64_t tl_last_seq = 0;
  tail->add_option("--url", t.url, "WebSocket URL")->capture_default_str();
  tail->add_option("--token", t.token, "JWT (or --user to mint one from the secret)");
  tail->add_option("--user", tl_user, "user to mint a development token for");
  tail->add_option("--secret", tl_secret, "HS256 secret for --user");
  tail->add_option("--data-dir", tl_data, "data directory holding secrets.toml")->capture_default_str();
  tail->add_option("--device", t.device, "device id");
  auto* last_seq_opt = tail->add_option("--last-seq", tl_last_seq, "resume after this seq");
  tail->add_option("--epoch", t.epoch, "epoch of --last-seq");
  tail->add_flag("--raw", t.raw, "print frames as received");
  tail->add_flag("--no-ack", t.no_ack, "withhold acks");
  tail->add_option("--count", t.count, "exit after this many messages");

  // ---- bench
  cli::BenchCommand bench(app);

  // ---- config-doc: the option table as Markdown (docs/configuration.md is made from it)
  auto* config_doc = app.add_subcommand("config-doc", "Print every serve option as a Markdown table");
  config_doc->group("");  // hidden from --help

  // A bad flag or a missing --config file is bad configuration like any
  // other: exit status 2 and one line (docs/configuration.md). --help is not.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    std::cerr << "herald: configuration error: " << e.what() << " (see --help)\n";
    return 2;
  }

  if (config_doc->parsed()) {
    std::cout << "| TOML key | environment | flag | default | meaning |\n| --- | --- | --- | --- | --- |\n";
    for (const auto& opt : config::option_table()) {
      std::cout << "| `" << opt.key << "` | `" << config::env_name(opt.key) << "` | `"
                << config::flag_name(opt.key) << "` | " << (opt.default_text.empty() ? "(unset)" : "`" + opt.default_text + "`")
                << " | " << opt.help << (opt.accepts.empty() ? "" : " (accepts " + opt.accepts + ")") << " |\n";
    }
    return 0;
  }

  if (serve->parsed()) {
    config::FlagValues flags;
    for (const auto& opt : config::option_table()) {
      if (serve->count(config::flag_name(opt.key)) > 0) {
        const bool boolean = opt.default_text == "false" || opt.default_text == "true";
        flags[opt.key] = boolean && flag_storage[opt.key].empty() ? "true" : flag_storage[opt.key];
      }
    }
    return run_serve(config_file, flags);
  }
  if (token->parsed()) {
    const std::string secret = jwt_secret_for_cli(t_secret, t_data);
    if (secret.empty()) {
      std::cerr << "herald token: no secret (give --secret, HERALD_JWT_SECRET, or --data-dir of a server)\n";
      return 2;
    }
    std::cout << mint_token(secret, t_user, t_device, t_ttl, t_iss, t_aud) << "\n";
    return 0;
  }
  if (publish->parsed()) {
    p.api_key = api_key_for_cli(p_key, p_data_dir);
    if (p_ttl > 0) p.ttl_ms = p_ttl;
    if (p_deliver_at > 0) p.deliver_at = p_deliver_at;
    return cli::run_publish(p);
  }
  if (bench.parsed()) return bench.run();
  if (tail->parsed()) {
    if (t.token.empty()) {
      if (tl_user.empty()) {
        std::cerr << "herald tail: give --token, or --user to mint a development token\n";
        return 2;
      }
      const std::string secret = jwt_secret_for_cli(tl_secret, tl_data);
      if (secret.empty()) {
        std::cerr << "herald tail: no secret to mint a token (give --secret or --data-dir)\n";
        return 2;
      }
      t.token = mint_token(secret, tl_user, t.device, 24 * 3600, "", "");
    }
    if (last_seq_opt->count() > 0) t.last_seq = tl_last_seq;
    return cli::run_tail(t);
  }
  return 0;
}
