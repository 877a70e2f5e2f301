#pragma once
// What other threads may ask of a live connection. Every call is safe from
// any thread: actions are posted to the connection's own I/O thread, and
// info() reads only immutable fields and atomics.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/close_reason.hpp"

namespace herald::hub {

struct ConnectionInfo {
  std::string user;
  std::string device;
  std::string conn_id;
  std::int64_t connected_at_ms = 0;
  std::optional<double> rtt_ms;  // last measured WebSocket ping round trip
  std::uint64_t cursor = 0;      // acked prefix on this connection
  std::uint64_t inflight = 0;    // messages sent and not acked
  std::uint64_t last_sent = 0;   // highest seq sent on this connection
  bool closing = false;          // a close has begun: no longer listed as present
};

// Which connection attempt of one client instance a connection is
// (?attempt=, docs/protocol.md "Stale attempts"): the session as a stable
// 64-bit hash (session 0: the client sent none) and the attempt number.
struct AttemptId {
  std::uint64_t session = 0;
  std::uint64_t n = 0;
  // An attempt that its own client had already given up for a later one.
  bool stale_against(const AttemptId& live) const { return session != 0 && session == live.session && n < live.n; }
};

// What orders two connections of one device made on different nodes.
struct ConnectStamp {
  AttemptId attempt;
  std::int64_t at_ms = 0;  // connected at, unix ms
  std::string conn_id;     // empty: from a node that did not send it
};

// PROTOCOL.md 2 across nodes: does a connection of the device made on
// another node (`remote`) replace this node's live one? A later attempt of
// the same client session always does, a stale one never (docs/protocol.md
// "Stale attempts"); otherwise the later connect does (node clocks assumed
// within a few ms, docs/cluster.md). In the same millisecond the higher
// conn id stays: both nodes judge alike, so exactly one of the two lives
// (without the remote's conn id, from an older node, both went).
inline bool remote_connection_replaces(const ConnectStamp& live, const ConnectStamp& remote) {
  if (remote.attempt.stale_against(live.attempt)) return false;
  if (live.attempt.stale_against(remote.attempt)) return true;
  if (live.at_ms != remote.at_ms) return live.at_ms < remote.at_ms;
  return remote.conn_id.empty() || live.conn_id < remote.conn_id;
}
// FNV-1a: the same on every node and every build, so nodes can compare.
inline std::uint64_t attempt_session_hash(std::string_view session) {
  if (session.empty()) return 0;
  std::uint64_t h = 14695981039346656037ull;
  for (const unsigned char c : session) h = (h ^ c) * 1099511628211ull;
  return h == 0 ? 1 : h;
}

class LiveConnection {
 public:
  virtual ~LiveConnection() = default;
  // New messages may be in the user's inbox.
  virtual void notify() = 0;
  // Close with this reason (4010 kick, 4011 replaced, 1001 drain).
  virtual void kick(CloseReason reason) = 0;
  virtual ConnectionInfo info() const = 0;
  // Fixed for the connection's life; the hub keys its entry by this string.
  virtual const std::string& user() const = 0;
  virtual const std::string& device() const = 0;
  virtual AttemptId attempt() const { return {}; }
};

}  // namespace herald::hub
