#include "gateway/connection_limits.hpp"

namespace herald::gateway {

ConnectionLimits::Admit ConnectionLimits::acquire(const std::string& ip) {
  std::lock_guard lock(mu_);
  if (total_.load(std::memory_order_relaxed) >= max_total_) return Admit::global_limit;
  auto& n = per_ip_[ip];
  if (n >= max_per_ip_) {
    if (n == 0) per_ip_.erase(ip);
    return Admit::ip_limit;
  }
  ++n;
  total_.fetch_add(1, std::memory_order_relaxed);
  return Admit::ok;
}

void ConnectionLimits::release(const std::string& ip) {
  std::lock_guard lock(mu_);
  auto it = per_ip_.find(ip);
  if (it == per_ip_.end()) return;
  if (--it->second == 0) per_ip_.erase(it);
  total_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace herald::gateway
