#include "store/rocksdb/wal_syncer.hpp"

#include "core/thread_name.hpp"
namespace herald::store {

WalSyncer::WalSyncer(std::function<bool()> sync_wal, std::chrono::milliseconds min_interval)
    : sync_wal_(std::move(sync_wal)), min_interval_(min_interval) {
  thread_ = std::thread([this] {
    set_thread_name("herald-walsync");
    run();
  });
}

WalSyncer::~WalSyncer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_one();
  thread_.join();
}

std::uint64_t WalSyncer::note_write() {
  std::uint64_t generation = 0;
  bool was_idle = false;
  {
    std::lock_guard lock(mu_);
    // Only the first write after a sync wakes the syncer: later ones find it
    // waiting out the interval (or syncing) and are covered by that sync or
    // the next, which run() starts without waiting for a signal. A wake per
    // write had cost two futex calls and a context switch per commit.
    was_idle = written_ == synced_;
    generation = ++written_;
  }
  if (was_idle) work_cv_.notify_one();
  return generation;
}

std::uint64_t WalSyncer::last_write() const {
  std::lock_guard lock(mu_);
  return written_;
}

bool WalSyncer::wait_synced(std::uint64_t generation) {
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&] { return synced_ >= generation || failed_; });
  return synced_ >= generation;
}

bool WalSyncer::healthy() const {
  std::lock_guard lock(mu_);
  return !failed_;
}

void WalSyncer::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stopping_ || (written_ > synced_ && !failed_); });
    if (failed_ || written_ == synced_) return;  // stopping with nothing (more) to sync
    // At most one sync per interval; a stop cuts the wait short so that
    // shutdown does not leave writers waiting.
    work_cv_.wait_until(lock, last_sync_start_ + min_interval_, [&] { return stopping_; });
    const std::uint64_t target = written_;
    last_sync_start_ = std::chrono::steady_clock::now();
    lock.unlock();
    const bool ok = sync_wal_();
    lock.lock();
    if (ok) {
      synced_ = target;
    } else {
      failed_ = true;
    }
    done_cv_.notify_all();
  }
}

}  // namespace herald::store
