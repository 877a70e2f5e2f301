#pragma once
// Batches cursor writes of one I/O worker's connections (PROTOCOL.md 1: the
// server may batch them; a lost update causes a redelivery, never a loss).
// Owned by one worker; update() and flush() only on its thread.
#include <chrono>
#include <cstdint>
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

  CursorFlusher(store::InboxStore& store, transport::IoWorker& worker,
                std::chrono::milliseconds interval, metrics::Counter* commits);
  void start();
  void update(const std::string& user, const std::string& device, std::uint64_t cursor);
  // Writes everything pending now (also on graceful shutdown).
  void flush();
  std::size_t pending() const { return pending_.size(); }

 private:
  void schedule();
  void flush_round(std::size_t left);
  std::size_t write(std::size_t max);  // the first max pending; returns how many

  store::InboxStore& store_;
  transport::IoWorker& worker_;
  std::chrono::milliseconds interval_;
  metrics::Counter* commits_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> pending_;
};

}  // namespace herald::gateway
