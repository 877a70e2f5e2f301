#pragma once
// Structured logs: one JSON object per line on stderr, with a level, a
// message and fields (trace_id where there is one). A thin layer over
// spdlog so the line is valid JSON whatever the message holds.
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

}  // namespace herald::log
