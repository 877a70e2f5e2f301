#pragma once
// The bound on a lost notification (ARCHITECTURE.md "Several nodes": a lost
// notification must not lose a message). Each tick visits one hub shard:
// reads the head seq of its online users from the store in one round trip
// and notifies every connection that has not been sent up to that head.
// With Hub::shard_count() shards and one tick per housekeeping pass, every
// online user is checked once per shard_count() ticks (docs/cluster.md
// "Catch-up": 64 x 20 ms, about 1.3 s).
//
// Work per tick: the connections of one shard (1/64 of them) and one
// pipelined store read. Called from one thread (the housekeeper); owns
// nothing but its position and counters.
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "hub/hub.hpp"
#include "store/inbox_store.hpp"

namespace herald::cluster {

struct CatchUpStats {
  std::atomic<std::uint64_t> ticks{0};
  std::atomic<std::uint64_t> users_checked{0};
  std::atomic<std::uint64_t> notified{0};  // connections found behind their user's head
};

class CatchUp {
 public:
  CatchUp(hub::Hub& hub, store::InboxStore& store) : hub_(hub), store_(store) {}

  // Checks the next shard; returns how many connections it notified.
  std::size_t tick();

  const CatchUpStats& stats() const { return stats_; }

 private:
  hub::Hub& hub_;
  store::InboxStore& store_;
  std::size_t next_shard_ = 0;
  CatchUpStats stats_;
};

}  // namespace herald::cluster
