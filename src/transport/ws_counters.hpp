#pragma once
// Counters the transport bumps, owned by whoever builds the server (so two
// servers in one process keep separate numbers).
#include "metrics/registry.hpp"

namespace herald::transport {

struct WsCounters {
  metrics::Counter* frames_in = nullptr;
  metrics::Counter* frames_out = nullptr;
  metrics::Counter* bytes_in = nullptr;
  metrics::Counter* bytes_out = nullptr;
  metrics::Gauge* send_queue_bytes = nullptr;  // summed over all connections
  metrics::Counter* send_queue_full = nullptr;
  metrics::Gauge* parked = nullptr;        // connections parked now (no Beast stream)
  metrics::Counter* unparks = nullptr;     // parked connections woken (client frame or a send)
};

}  // namespace herald::transport
