#pragma once
// Batches cursor writes of one I/O worker's connections (PROTOCOL.md 1: the
// server may batch them; a lost update causes a redelivery, never a loss).
// Owned by one worker; update() and flush() only on its thread.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "metrics/registry.hpp"
#include "store/inbox_store.hpp"
#include "transport/io_worker.hpp"

namespace herald::gateway {

class CursorFlusher {
 public:
  // Where a flushed batch goes: the store worker, so that this I/O thread
  // never waits for a store write (server.cpp).
  using Sink = std::function<void(std::vector<store::CursorUpdate>)>;
  CursorFlusher(Sink sink, transport::IoWorker& worker, std::chrono::milliseconds interval,
                metrics::Counter* commits);
  void start();
  void update(const std::string& user, const std::string& device, std::uint64_t cursor);
  // Writes everything pending now (also on graceful shutdown).
  void flush();
  std::size_t pending() const { return pending_.size(); }

 private:
  void schedule();

  Sink sink_;
  transport::IoWorker& worker_;
  std::chrono::milliseconds interval_;
  metrics::Counter* commits_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> pending_;
};

}  // namespace herald::gateway
