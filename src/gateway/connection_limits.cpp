#include "gateway/connection_limits.hpp"

namespace herald::gateway {

ConnectionLimits::Admission ConnectionLimits::acquire(const std::string& ip) {
  std::lock_guard lock(mu_);
  if (total_.load(std::memory_order_relaxed) >= max_total_) return {Admit::global_limit, {}};
  auto [it, inserted] = per_ip_.try_emplace(ip, 0);
  if (it->second >= max_per_ip_) {
    if (it->second == 0) per_ip_.erase(it);
    return {Admit::ip_limit, {}};
  }
  ++it->second;
  total_.fetch_add(1, std::memory_order_relaxed);
  return {Admit::ok, Ticket(&*it)};
}

void ConnectionLimits::release(Ticket& ticket) {
  if (!ticket.valid()) return;
  std::lock_guard lock(mu_);
  if (--ticket.entry_->second == 0) per_ip_.erase(per_ip_.find(ticket.entry_->first));
  ticket.entry_ = nullptr;
  total_.fetch_sub(1, std::memory_order_relaxed);
}

std::uint32_t ConnectionLimits::count(const std::string& ip) const {
  std::lock_guard lock(mu_);
  auto it = per_ip_.find(ip);
  return it == per_ip_.end() ? 0 : it->second;
}

}  // namespace herald::gateway
