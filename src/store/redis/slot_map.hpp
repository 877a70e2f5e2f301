#pragma once
// Redis Cluster routing, the small piece hiredis lacks (ARCHITECTURE.md
// "Dependencies"): the key -> slot function, the slot -> node map read from
// CLUSTER SLOTS, and the MOVED/ASK redirections that correct it.
//
// Pure logic, no sockets: RedisLink owns one SlotMap and feeds it replies.
// Not thread-safe on its own; RedisLink guards it.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisReply;

namespace herald::store {

inline constexpr std::uint16_t kClusterSlots = 16384;

// CRC16-XMODEM of the key's hash tag (the part between the first '{' and the
// next '}', when non-empty) or of the whole key, mod 16384: the slot Redis
// Cluster stores the key in.
std::uint16_t key_slot(std::string_view key);

// "host:port" of a node.
using NodeAddress = std::string;

// A redirection error reply: `MOVED <slot> <host:port>` (the slot lives
// elsewhere now; refresh the map) or `ASK <slot> <host:port>` (this one
// command goes there, preceded by ASKING; the map stays).
struct Redirect {
  enum class Kind { moved, ask } kind = Kind::moved;
  std::uint16_t slot = 0;
  NodeAddress node;
};
std::optional<Redirect> parse_redirect(std::string_view error);

class SlotMap {
 public:
  // Replaces the map with a CLUSTER SLOTS reply (masters only). False, and
  // the map unchanged, when the reply is not a well-formed slot table.
  bool update(const redisReply& cluster_slots);
  // A MOVED redirection: this slot now lives on that node.
  void move(std::uint16_t slot, const NodeAddress& node);

  // The node serving the slot; nullopt when the map does not know it.
  std::optional<NodeAddress> node_for(std::uint16_t slot) const;
  // Every node that serves at least one slot, sorted.
  std::vector<NodeAddress> nodes() const;
  bool empty() const { return nodes_.empty(); }

 private:
  std::vector<NodeAddress> nodes_;                   // distinct masters
  std::array<std::int16_t, kClusterSlots> owner_{};  // index into nodes_ + 1; 0: unknown
};

}  // namespace herald::store
