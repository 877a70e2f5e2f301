#pragma once
// Connection counts per IP and in total, checked before the upgrade
// (PROTOCOL.md 2: 429). The per-user limit lives in the hub, which knows
// about device replacement. Thread-safe.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace herald::gateway {

class ConnectionLimits {
 public:
  enum class Admit { ok, ip_limit, global_limit };

  ConnectionLimits(std::uint32_t max_total, std::uint32_t max_per_ip)
      : max_total_(max_total), max_per_ip_(max_per_ip) {}

  // Counts one connection from ip if both limits allow it.
  Admit acquire(const std::string& ip);
  void release(const std::string& ip);
  std::uint64_t total() const { return total_.load(std::memory_order_relaxed); }

 private:
  const std::uint32_t max_total_;
  const std::uint32_t max_per_ip_;
  std::atomic<std::uint64_t> total_{0};
  std::mutex mu_;  // connect/disconnect only, never per message
  std::unordered_map<std::string, std::uint32_t> per_ip_;
};

}  // namespace herald::gateway
