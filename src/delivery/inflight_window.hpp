#pragma once
// What one connection has sent and not yet had acked (PROTOCOL.md 4.3): at
// most max_inflight messages (a limit the caller passes in, so that every
// connection does not keep a copy of it), first attempts in increasing seq order, and
// the cursor as the highest seq below which everything sent is acked.
//
// Pure bookkeeping, owned by one connection on its I/O thread.
#include <cstdint>
#include <vector>

#include <boost/container/devector.hpp>

#include "store/message.hpp"
#include "timers/timing_wheel.hpp"

namespace herald::delivery {

struct InflightEntry {
  store::MessagePtr message;
  std::uint32_t attempt = 1;          // sends on this connection so far
  std::int64_t first_sent_ms = 0;
  timers::TimerId retry_timer;
};

class InflightWindow {
 public:
  explicit InflightWindow(std::uint64_t start_position);

  bool has_room(std::uint32_t max_inflight) const { return entries_.size() < max_inflight; }
  std::size_t room(std::uint32_t max_inflight) const {
    return has_room(max_inflight) ? max_inflight - entries_.size() : 0;
  }
  std::size_t size() const { return entries_.size(); }
  // Highest seq ever sent (or the start position).
  std::uint64_t last_sent() const { return last_sent_; }
  // Every seq <= cursor that this connection sent is acked.
  std::uint64_t cursor() const { return cursor_; }

  // Records a first attempt; seq must exceed last_sent(). The reference
  // (like find()'s pointer) holds until the window next changes.
  InflightEntry& on_sent(store::MessagePtr message, std::int64_t now_ms);
  InflightEntry* find(std::uint64_t seq);
  // Lowest unacked seq sent (size() must be > 0).
  std::uint64_t lowest_unacked() const { return entries_.front().message->seq; }

  // Acks one seq or everything sent up to a seq; returns the entries acked
  // now (already-acked and unknown seqs are ignored, PROTOCOL.md 3, 10).
  std::vector<InflightEntry> ack(std::uint64_t seq);
  std::vector<InflightEntry> ack_upto(std::uint64_t upto);

  // Every unacked entry (on close, to cancel timers).
  std::vector<InflightEntry> take_all();

 private:
  void advance_cursor();
  void release_if_empty();

  std::uint64_t last_sent_;
  std::uint64_t cursor_;
  // Unacked, in seq order (sends come in seq order; acks mostly from the
  // front). Contiguous and at most max_inflight long: 32 bytes of container
  // in every connection, against 48 and a node per entry for a std::map.
  boost::container::devector<InflightEntry> entries_;
};

}  // namespace herald::delivery
