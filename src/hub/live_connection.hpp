#pragma once
// What other threads may ask of a live connection. Every call is safe from
// any thread: actions are posted to the connection's own I/O thread, and
// info() reads only immutable fields and atomics.
#include <cstdint>
#include <optional>
#include <string>

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

class LiveConnection {
 public:
  virtual ~LiveConnection() = default;
  // New messages may be in the user's inbox.
  virtual void notify() = 0;
  // Close with this reason (4010 kick, 4011 replaced, 1001 drain).
  virtual void kick(CloseReason reason) = 0;
  virtual ConnectionInfo info() const = 0;
  virtual const std::string& device() const = 0;
};

}  // namespace herald::hub
