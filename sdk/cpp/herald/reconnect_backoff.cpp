#include "herald/reconnect_backoff.hpp"

#include <algorithm>
#include <charconv>

namespace herald::sdk {

ReconnectBackoff::ReconnectBackoff(std::chrono::milliseconds initial,
                                   std::chrono::milliseconds max, std::uint64_t seed)
    : initial_(std::max(initial, std::chrono::milliseconds(0))),
      max_(std::max(max, std::chrono::milliseconds(0))),
      rng_(seed) {}

std::chrono::milliseconds ReconnectBackoff::current_cap() const {
  // Doubling stops once the cap is reached, so the shift never overflows.
  std::chrono::milliseconds cap = std::min(initial_, max_);
  for (std::uint32_t i = 0; i < failures_ && cap < max_ && cap.count() > 0; ++i) {
    cap = cap > max_ / 2 ? max_ : cap * 2;
  }
  return cap;
}

std::chrono::milliseconds ReconnectBackoff::next() { return next(max_); }

std::chrono::milliseconds ReconnectBackoff::next(std::chrono::milliseconds ceiling) {
  const auto cap = std::min(current_cap(), ceiling);
  if (failures_ < 64) ++failures_;
  return uniform(cap);
}

std::chrono::milliseconds ReconnectBackoff::uniform(std::chrono::milliseconds bound) {
  if (bound <= std::chrono::milliseconds(0)) return std::chrono::milliseconds(0);
  std::uniform_int_distribution<std::int64_t> dist(0, bound.count());
  return std::chrono::milliseconds(dist(rng_));
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view close_reason) {
  constexpr std::string_view key = "retry_after=";
  const auto at = close_reason.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  const auto digits = close_reason.substr(at + key.size());
  std::int64_t ms = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), ms);
  if (ec != std::errc() || end == digits.data() || ms < 0) return std::nullopt;
  return std::chrono::milliseconds(ms);
}

std::chrono::milliseconds going_away_bound(std::string_view close_reason,
                                           std::chrono::milliseconds backoff_max) {
  return parse_retry_after(close_reason).value_or(backoff_max);
}

}  // namespace herald::sdk
