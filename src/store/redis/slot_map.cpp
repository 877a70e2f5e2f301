#include "store/redis/slot_map.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>

namespace herald::store {

namespace {

// CRC16-CCITT/XMODEM (poly 0x1021, init 0), as Redis Cluster specifies.
std::uint16_t crc16(std::string_view data) {
  std::uint16_t crc = 0;
  for (const char c : data) {
    crc = static_cast<std::uint16_t>(crc ^ (static_cast<std::uint8_t>(c) << 8));
    for (int i = 0; i < 8; ++i) {
      crc = (crc & 0x8000) != 0 ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<std::uint16_t>(crc << 1);
    }
  }
  return crc;
}

template <class Int>
std::optional<Int> to_int(std::string_view s) {
  Int v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::uint16_t key_slot(std::string_view key) {
  if (const auto open = key.find('{'); open != std::string_view::npos) {
    const auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return static_cast<std::uint16_t>(crc16(key) % kClusterSlots);
}

std::optional<Redirect> parse_redirect(std::string_view error) {
  Redirect r;
  if (error.starts_with("MOVED ")) {
    r.kind = Redirect::Kind::moved;
    error.remove_prefix(6);
  } else if (error.starts_with("ASK ")) {
    r.kind = Redirect::Kind::ask;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const auto space = error.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const auto slot = to_int<std::uint16_t>(error.substr(0, space));
  if (!slot || *slot >= kClusterSlots) return std::nullopt;
  r.slot = *slot;
  r.node = std::string(error.substr(space + 1));
  if (r.node.empty() || r.node.find(':') == std::string::npos) return std::nullopt;
  return r;
}

bool SlotMap::update(const redisReply& reply) {
  if (reply.type != REDIS_REPLY_ARRAY) return false;
  std::vector<NodeAddress> nodes;
  std::array<std::int16_t, kClusterSlots> owner{};
  for (std::size_t i = 0; i < reply.elements; ++i) {
    // [start, end, [host, port, id...], replicas...]
    const redisReply* range = reply.element[i];
    if (range->type != REDIS_REPLY_ARRAY || range->elements < 3) return false;
    const redisReply* start = range->element[0];
    const redisReply* end = range->element[1];
    const redisReply* master = range->element[2];
    if (start->type != REDIS_REPLY_INTEGER || end->type != REDIS_REPLY_INTEGER ||
        master->type != REDIS_REPLY_ARRAY || master->elements < 2 ||
        master->element[0]->type != REDIS_REPLY_STRING ||
        master->element[1]->type != REDIS_REPLY_INTEGER) {
      return false;
    }
    if (start->integer < 0 || end->integer >= kClusterSlots || start->integer > end->integer) {
      return false;
    }
    const NodeAddress node = std::string(master->element[0]->str, master->element[0]->len) + ":" +
                             std::to_string(master->element[1]->integer);
    auto it = std::find(nodes.begin(), nodes.end(), node);
    if (it == nodes.end()) it = nodes.insert(nodes.end(), node);
    const auto index = static_cast<std::int16_t>(it - nodes.begin() + 1);
    for (long long s = start->integer; s <= end->integer; ++s) owner[static_cast<std::size_t>(s)] = index;
  }
  nodes_ = std::move(nodes);
  owner_ = owner;
  return true;
}

void SlotMap::move(std::uint16_t slot, const NodeAddress& node) {
  auto it = std::find(nodes_.begin(), nodes_.end(), node);
  if (it == nodes_.end()) it = nodes_.insert(nodes_.end(), node);
  owner_[slot] = static_cast<std::int16_t>(it - nodes_.begin() + 1);
}

std::optional<NodeAddress> SlotMap::node_for(std::uint16_t slot) const {
  const auto index = owner_[slot % kClusterSlots];
  if (index == 0) return std::nullopt;
  return nodes_[static_cast<std::size_t>(index - 1)];
}

std::vector<NodeAddress> SlotMap::nodes() const {
  std::vector<NodeAddress> out;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (std::find(owner_.begin(), owner_.end(), static_cast<std::int16_t>(i + 1)) != owner_.end()) {
      out.push_back(nodes_[i]);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace herald::store
