#include "hub/recent_remote_connects.hpp"

#include <utility>

namespace herald::hub {

// User ids have no control characters (PROTOCOL.md 10): '\n' separates.
std::string RecentRemoteConnects::key(const std::string& user, const std::string& device) {
  std::string k;
  k.reserve(user.size() + 1 + device.size());
  k.append(user).append(1, '\n').append(device);
  return k;
}

void RecentRemoteConnects::remember(const std::string& user, const std::string& device, ConnectStamp stamp,
                                    std::int64_t now_ms) {
  std::string k = key(user, device);
  std::lock_guard lock(mu_);
  forget_old_locked(now_ms);
  by_device_[k] = Heard{std::move(stamp), now_ms};
  order_.emplace_back(now_ms, std::move(k));
  while (order_.size() > kMaxEntries) {
    auto& [heard, oldest] = order_.front();
    if (auto it = by_device_.find(oldest); it != by_device_.end() && it->second.heard_ms == heard) by_device_.erase(it);
    order_.pop_front();
  }
}

bool RecentRemoteConnects::replaced_by_remote(const std::string& user, const std::string& device,
                                              const ConnectStamp& local, std::int64_t now_ms) const {
  std::lock_guard lock(mu_);
  auto it = by_device_.find(key(user, device));
  if (it == by_device_.end() || now_ms - it->second.heard_ms > kKeepMs) return false;
  return remote_connection_replaces(local, it->second.stamp);
}

std::size_t RecentRemoteConnects::size() const {
  std::lock_guard lock(mu_);
  return by_device_.size();
}

void RecentRemoteConnects::forget_old_locked(std::int64_t now_ms) {
  while (!order_.empty() && now_ms - order_.front().first > kKeepMs) {
    auto& [heard, oldest] = order_.front();
    if (auto it = by_device_.find(oldest); it != by_device_.end() && it->second.heard_ms == heard) by_device_.erase(it);
    order_.pop_front();
  }
}

}  // namespace herald::hub
