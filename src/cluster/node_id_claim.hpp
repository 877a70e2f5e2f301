#pragma once
// Two processes with one node_id on one Redis overwrite each other's alive
// key (its incarnation flips every second, so presence drops and restores
// their devices) and each treats the other's devices as its own, so
// notifications between them wait for the catch-up pass (~1 s). The
// default node_id is the host name, so two nodes started on one host with
// only HERALD_STORE and HERALD_REDIS_URL did exactly that, silently.
//
// At start-up, before any alive key is written: if P{node:N}:alive is held
// and refreshed by someone else (its value or its expiry moves within
// 1.2 s, one heartbeat), N is taken. A key that stands still is a previous
// run of this node that died (kill -9), not a clash.
#include <string>

#include "store/redis/redis_endpoints.hpp"

namespace herald::cluster {

struct NodeIdClaim {
  std::string node_id;  // the id to use
  bool renamed = false;  // the default was taken: a suffix was added
};

// wanted: the configured node_id; defaulted: it is the host name because
// none was configured. Throws std::runtime_error when a configured id is in
// use by a live node (a misconfiguration the operator must fix); a default
// one gets "-" and 4 random hex digits instead. Redis unreachable: wanted,
// unchecked.
NodeIdClaim claim_node_id(const store::RedisEndpoints& endpoints, const std::string& prefix,
                          const std::string& wanted, bool defaulted);

}  // namespace herald::cluster
