#include "bench_target.hpp"

#include <boost/json.hpp>

#include "auth/jwt.hpp"
#include "core/clock.hpp"

namespace herald::bench {

BenchTarget::BenchTarget(const TargetOptions& opts, std::map<std::string, std::string> scenario_env)
    : env_(std::move(scenario_env)) {
  if (!opts.url.empty()) {
    url_ = opts.url;
    api_key_ = opts.api_key;
    secret_ = opts.secret;
    return;
  }
  for (const auto& [k, v] : opts.server_env) env_[k] = v;
  server_ = std::make_unique<SpawnedServer>(opts.binary, env_);
  server_->start();
  url_ = server_->url();
  api_key_ = server_->api_key();
  secret_ = server_->secret();
}

std::string BenchTarget::token(const std::string& user) const {
  const std::int64_t now = unix_ms_now() / 1000;
  return auth::sign_hs256(boost::json::object{{"sub", user}, {"iat", now}, {"exp", now + 86400}}, secret_);
}

std::string BenchTarget::describe() const {
  if (!server_) return url_;
  std::string out = "spawned";
  for (const auto& [k, v] : env_) out += " " + k + "=" + v;
  return out;
}

}  // namespace herald::bench
