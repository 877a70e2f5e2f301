#pragma once
// Connection counts per IP and in total, checked before the upgrade
// (PROTOCOL.md 2: 429). The per-user limit lives in the hub, which knows
// about device replacement. Thread-safe.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace herald::gateway {

class ConnectionLimits {
 public:
  enum class Admit { ok, ip_limit, global_limit };

  // One admitted connection's share of its address's count, to give back
  // with release(). Every idle connection keeps one: it is a pointer to the
  // count's entry (8 bytes) rather than a copy of the address. The entry
  // stays put while any ticket for it is out (unordered_map nodes do not
  // move).
  class Ticket {
   public:
    Ticket() = default;
    bool valid() const { return entry_ != nullptr; }

   private:
    friend class ConnectionLimits;
    using Entry = std::pair<const std::string, std::uint32_t>;
    explicit Ticket(Entry* entry) : entry_(entry) {}
    Entry* entry_ = nullptr;
  };

  struct Admission {
    Admit admit;
    Ticket ticket;  // valid when admit is ok
  };

  ConnectionLimits(std::uint32_t max_total, std::uint32_t max_per_ip)
      : max_total_(max_total), max_per_ip_(max_per_ip) {}

  // Counts one connection from ip if both limits allow it.
  Admission acquire(const std::string& ip);
  // Gives the ticket's share back and clears it; an invalid ticket is a no-op.
  void release(Ticket& ticket);
  std::uint64_t total() const { return total_.load(std::memory_order_relaxed); }
  // Connections counted for ip (0 for an address with none).
  std::uint32_t count(const std::string& ip) const;

 private:
  const std::uint32_t max_total_;
  const std::uint32_t max_per_ip_;
  std::atomic<std::uint64_t> total_{0};
  mutable std::mutex mu_;  // connect/disconnect only, never per message
  std::unordered_map<std::string, std::uint32_t> per_ip_;
};

}  // namespace herald::gateway
