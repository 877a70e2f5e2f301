#pragma once
// Structured logs: one JSON object per line on stderr, with a level, a
// message and fields (trace_id where there is one). A thin layer over
// spdlog so the line is valid JSON whatever the message holds.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>

#include <boost/json/object.hpp>
#include <spdlog/common.h>

namespace herald::log {

// Sets the minimum level ("trace".."error"); throws std::invalid_argument.
void set_level(std::string_view level);
bool enabled(spdlog::level::level_enum level);
void write(spdlog::level::level_enum level, std::string_view message, boost::json::object fields = {});

inline void info(std::string_view m, boost::json::object f = {}) { write(spdlog::level::info, m, std::move(f)); }
inline void warn(std::string_view m, boost::json::object f = {}) { write(spdlog::level::warn, m, std::move(f)); }
inline void error(std::string_view m, boost::json::object f = {}) { write(spdlog::level::err, m, std::move(f)); }
inline void debug(std::string_view m, boost::json::object f = {}) {
  if (enabled(spdlog::level::debug)) write(spdlog::level::debug, m, std::move(f));
}

// At most one line per `every` from one call site, for events a client or a
// failing dependency can repeat at will (a log must not fill the disk):
//
//   static log::Throttle throttle(std::chrono::seconds(10));
//   if (auto held = throttle.admit()) log::warn("...", {{"suppressed", *held}});
//
// admit() gives the number of lines held back since the last one written,
// or nullopt when this one is to be held back too. Thread-safe.
class Throttle {
 public:
  explicit Throttle(std::chrono::milliseconds every) : every_(every) {}
  std::optional<std::uint64_t> admit();

 private:
  const std::chrono::milliseconds every_;
  std::mutex mu_;
  std::chrono::steady_clock::time_point next_{};
  std::uint64_t held_ = 0;
};

}  // namespace herald::log
