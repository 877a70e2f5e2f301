#pragma once
// The sync barrier of SyncMode::batch (ARCHITECTURE.md "Storage and
// durability"): writers write without fsync, note their write, and wait
// until a background thread has synced the WAL past it. The thread syncs as
// soon as a write is pending, but at most once per min_interval, so under
// load one fsync covers every write of that interval and no write waits
// longer than about min_interval plus one fsync.
//
// Owns one thread. note_write() and wait_synced() are thread-safe. A failed
// sync is final (an fsync error cannot be retried safely): every write not
// yet synced, and every later one, gets false. Knows nothing of rocksdb: the
// sync is a callable, so tests drive it directly.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace herald::store {

class WalSyncer final {
 public:
  // sync_wal makes every write noted so far durable; false on failure.
  WalSyncer(std::function<bool()> sync_wal, std::chrono::milliseconds min_interval);
  // Syncs what is pending, then stops the thread.
  ~WalSyncer();
  WalSyncer(const WalSyncer&) = delete;
  WalSyncer& operator=(const WalSyncer&) = delete;

  // Called after a write returned (it is in the WAL, not yet synced): its
  // generation, to pass to wait_synced.
  std::uint64_t note_write();
  // The generation of the latest noted write (0: none).
  std::uint64_t last_write() const;
  // Blocks until every write up to `generation` is synced: true, or false
  // when a sync failed first.
  bool wait_synced(std::uint64_t generation);
  // False once a sync failed.
  bool healthy() const;

 private:
  void run();

  const std::function<bool()> sync_wal_;
  const std::chrono::milliseconds min_interval_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // syncer waits: a write was noted, or stop
  std::condition_variable done_cv_;  // writers wait: a sync completed or failed
  std::uint64_t written_ = 0;        // generation of the latest noted write
  std::uint64_t synced_ = 0;         // every generation <= this is durable
  bool failed_ = false;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point last_sync_start_{};
  std::thread thread_;
};

}  // namespace herald::store
