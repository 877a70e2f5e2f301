#pragma once
// Batches cursor writes of one I/O worker's connections (PROTOCOL.md 1: the
// server may batch them; a lost update causes a redelivery, never a loss).
// Owned by one worker; update() and flush() only on its thread.
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <utility>

#include "metrics/registry.hpp"
#include "store/inbox_store.hpp"
#include "transport/io_worker.hpp"

namespace herald::gateway {

class CursorFlusher {
 public:
  // Cursors per store write of a timed flush, each write its own handler
  // on the worker (see flush_round()).
  static constexpr std::size_t kChunk = 64;
  static constexpr std::size_t kMaxMarks = 4096;

  CursorFlusher(store::InboxStore& store, transport::IoWorker& worker,
                std::chrono::milliseconds interval, metrics::Counter* commits);
  void start();
  void update(const std::string& user, const std::string& device, std::uint64_t cursor);
  // An ack above the device's cursor, for a store that keeps such marks
  // (InboxStore::keeps_ack_marks); written with the next batch. Bounded:
  // past kMaxMarks pending the oldest go (a mark only spares a dead letter).
  void mark_acked(const std::string& user, const std::string& device, std::uint64_t seq);
  // Writes everything pending now (also on graceful shutdown).
  void flush();
  std::size_t pending() const { return pending_.size(); }
  std::size_t pending_marks() const { return marks_.size(); }

 private:
  void schedule();
  void flush_round(std::size_t left);
  std::size_t write(std::size_t max);  // the first max pending; returns how many

  store::InboxStore& store_;
  transport::IoWorker& worker_;
  std::chrono::milliseconds interval_;
  metrics::Counter* commits_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> pending_;
  std::deque<store::AckMark> marks_;
};

}  // namespace herald::gateway
