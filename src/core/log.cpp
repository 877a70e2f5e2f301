#include "core/log.hpp"

#include <chrono>
#include <stdexcept>
#include <utility>

#include <boost/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace herald::log {
namespace {

std::shared_ptr<spdlog::logger> logger() {
  // The one process-wide sink: stderr is shared by definition.
  static auto l = [] {
    auto lg = spdlog::stderr_logger_mt("herald");
    lg->set_pattern("%v");
    lg->set_level(spdlog::level::info);
    lg->flush_on(spdlog::level::info);
    return lg;
  }();
  return l;
}

std::string iso_now() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  const std::time_t t = system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

void set_level(std::string_view level) {
  auto lv = spdlog::level::from_str(std::string(level));
  if (lv == spdlog::level::off && level != "off") {
    throw std::invalid_argument("log_level: unknown level '" + std::string(level) + "'");
  }
  logger()->set_level(lv);
}

bool enabled(spdlog::level::level_enum level) { return logger()->should_log(level); }

void write(spdlog::level::level_enum level, std::string_view message, boost::json::object fields) {
  if (!enabled(level)) return;
  boost::json::object line;
  line["ts"] = iso_now();
  // spdlog calls it "warning"; log_level spells it "warn", and so do we.
  line["level"] = level == spdlog::level::warn ? "warn" : spdlog::level::to_string_view(level).data();
  line["msg"] = message;
  for (auto& [k, v] : fields) line[k] = std::move(v);
  logger()->log(level, boost::json::serialize(line));
}

std::optional<std::uint64_t> Throttle::admit() {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  if (now < next_) {
    ++held_;
    return std::nullopt;
  }
  next_ = now + every_;
  return std::exchange(held_, 0);
}

}  // namespace herald::log
