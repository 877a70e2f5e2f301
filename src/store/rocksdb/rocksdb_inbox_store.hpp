#pragma once
// InboxStore and ScheduleStore on an embedded RocksDB: the default backend,
// a data directory and nothing else to run (ARCHITECTURE.md "Storage and
// durability"). Epochs, seqs, dedup keys, cursors, the dead-letter log and
// the schedule survive restarts (PROTOCOL.md 10). Layout and encodings:
// store/rocksdb/inbox_layout.hpp. The code: rocksdb_inbox_store.cpp (open,
// close, the inbox cache), rocksdb_inbox_mutations.cpp (writes),
// rocksdb_inbox_reads.cpp (reads), rocksdb_schedule.cpp (the schedule),
// sharing rocksdb_inbox_state.hpp.
//
// Owns the database, a bounded cache of per-user inbox state (meta and
// device cursors; evicted entries reload from disk) and, under
// SyncMode::batch, the WalSyncer thread. Only appends put inboxes in the
// cache: reads and the other mutations use a cached inbox when there is
// one and read the disk otherwise, so connecting devices fill nothing. An
// inbox unused for 5-10 s leaves the cache (release_idle()): idle
// connections, the most numerous, then hold no store memory beyond
// RocksDB's own.
//
// Threading: every method is thread-safe. Mutations (append, expire,
// register_device, commit_cursors, state() creating an inbox) are
// serialized by one write mutex, held while they read what they change and
// write one WriteBatch; appends come from the single StoreWorker anyway.
// Reads take only a short per-shard mutex for the cached state, then read
// RocksDB without locks. Lock order: write mutex, then a shard mutex, then
// the WalSyncer's. Under SyncMode::batch the write mutex is released before
// an append waits for its WAL sync, so other writers go on meanwhile.
// Schedule writes (schedule, remove) are serialized by their own mutex,
// never held with the write mutex (they touch none of the same keys; the
// dedup family is only read), then the WalSyncer's.
//
// Visibility: readers see an append's messages only once it is durable
// under the sync policy, so a message is never sent, then lost in a crash,
// then its seq reused for another one.
//
// A crash: every mutation is one atomic WriteBatch, so on restart each is
// wholly there or wholly absent. An append that returned is on disk under
// always and batch; under none it survives a process crash, not a power
// loss. Cursor writes, expiry and schedule removals are never synced on
// their own (a lost cursor means a redelivery; a lost expiry runs again; a
// lost removal appends a duplicate).
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "store/inbox_store.hpp"
#include "store/rocksdb/inbox_database.hpp"
#include "store/schedule_store.hpp"
#include "store/sync_mode.hpp"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class CompactionFilter;
}  // namespace rocksdb

namespace herald::store {

class InboxDatabase;
class WalSyncer;

class RocksDbInboxStore final : public InboxStore, public ScheduleStore {
 public:
  // Opens (or creates) the database at path. Throws std::runtime_error
  // naming the path and the cause when it cannot: locked by another process
  // or instance, unreadable, or written by an unknown format.
  RocksDbInboxStore(std::string path, StorePolicy policy, SyncMode sync,
                    std::chrono::milliseconds sync_batch,
                    std::size_t max_dead_letters = kDefaultMaxDeadLetters,
                    std::size_t max_scheduled = kDefaultMaxScheduled, RocksDbMemory memory = {});
  // Syncs the WAL and closes the database.
  ~RocksDbInboxStore() override;
  RocksDbInboxStore(const RocksDbInboxStore&) = delete;
  RocksDbInboxStore& operator=(const RocksDbInboxStore&) = delete;

  // The whole batch is one WriteBatch (group commit): every item is stored,
  // or every item fails with store_unavailable.
  std::vector<AppendOutcome> append(std::span<const NewMessage> batch, std::int64_t now_ms) override;
  std::vector<MessagePtr> read_after(std::string_view user, std::uint64_t after_seq,
                                     std::size_t limit, std::int64_t now_ms) override;
  MessagePtr get(std::string_view user, std::uint64_t seq) override;
  // The epoch of a new inbox is made and written here on first use.
  InboxState state(std::string_view user) override;
  std::optional<std::uint64_t> cursor(std::string_view user, std::string_view device) override;
  std::optional<std::uint64_t> lost_mark(std::string_view user, std::string_view device) override;
  std::vector<DeviceCursor> cursors(std::string_view user) override;
  void register_device(std::string_view user, std::string_view device,
                       std::uint64_t initial_cursor) override;
  // All updates in one unsynced WriteBatch.
  void commit_cursors(std::span<const CursorUpdate> updates) override;
  BacklogSlice scan_backlog(std::string_view position, std::size_t max_users) override;
  // Walks the expiry index in time order; also drops index entries of
  // messages already gone (bounded per call as well).
  std::size_t expire(std::int64_t now_ms, std::size_t budget) override;
  std::vector<DeadLetter> dead_letters(std::uint64_t after_id, std::size_t limit) override;
  std::uint64_t dead_letter_count() override;
  std::optional<DeadLetter> dead_letter(std::string_view user, std::uint64_t seq) override;
  // False after a failed write or WAL sync.
  bool healthy() override;
  // Sweeps one cache shard per kIdleSweepMs / shards: an inbox not used
  // since the shard's previous sweep is dropped (unless a mutation pins it).
  void release_idle(std::int64_t now_ms) override;
  // Inboxes whose state is cached now.
  std::size_t cached_inboxes();
  // Publishes whose id had the generated shape and no dedup entry, so were
  // looked for among their user's retained messages (find_generated_id()).
  std::uint64_t generated_id_lookups() const { return generated_id_lookups_.load(std::memory_order_relaxed); }

  // One WriteBatch, synced under always; under batch it waits for the WAL
  // sync (on the caller's thread).
  ScheduleResult schedule(const NewMessage& m, std::int64_t deliver_at_ms) override;
  // A consistent snapshot; an unreadable record is skipped (and stays).
  std::vector<ScheduledMessage> due(std::int64_t now_ms, std::size_t limit) override;
  // One unsynced WriteBatch.
  void remove(std::span<const std::uint64_t> schedule_ids) override;
  std::size_t scheduled_count() override;

  // Bounded disk for the dead-letter log; the oldest entries are dropped.
  static constexpr std::size_t kDefaultMaxDeadLetters = 1'000'000;

 private:
  struct CachedInbox;
  struct Shard;
  struct Staged;
  class Mutation;

  Shard& shard_of(std::string_view user);
  // The cached state of a user, loaded from disk on a miss; nullptr when the
  // user has no inbox, or (io_error set) when it could not be read. Shard
  // mutex held.
  CachedInbox* find_or_load_locked(Shard& s, std::string_view user, bool& io_error);
  // What a read of an inbox missing from the cache takes from the disk: the
  // meta alone (one point read: a connect's state and first read), or the
  // devices' cursors as well (a scan).
  enum class Devices : bool { skip, load };
  // The same without filling the cache: a miss is read into scratch. Shard
  // mutex held (an append's staging then either precedes the read, and the
  // inbox is cached and pinned, or follows it).
  const CachedInbox* peek_locked(Shard& s, std::string_view user, CachedInbox& scratch, bool& io_error,
                                 Devices devices);
  // Reads a user's inbox state from disk; false when there is none, or
  // (io_error set) when it could not be read.
  bool load(std::string_view user, CachedInbox& out, bool& io_error, Devices devices = Devices::load);
  void evict_locked(Shard& s, std::string_view keep);

  // Write-mutex-held steps of a mutation. stage() copies a user's state
  // into the mutation (pinning its cache entry), creating a new inbox when
  // asked; nullptr when absent and not created, or on a read error.
  Staged* stage(Mutation& m, std::string_view user, bool create);
  AppendResult append_one(Mutation& m, const NewMessage& msg, std::int64_t now_ms);
  void add_expiry(Mutation& m, Staged& u, std::uint64_t seq, std::int64_t expires_at_ms);
  std::optional<std::uint64_t> find_generated_id(Mutation& m, const Staged& u, std::string_view id,
                                                 std::int64_t now_ms);
  void flush_expiry(Mutation& m, Staged& u);
  // Raises the device's lost mark to seq, which left before the device acked it.
  void raise_lost_mark(Mutation& m, Staged& u, const std::string& device, std::uint64_t seq);
  // Removes a retained message; unacked ones become dead letters when a
  // reason is given (collapse gives none). False when it was not retained.
  bool remove_message(Mutation& m, Staged& u, std::uint64_t seq,
                      std::optional<DeadReason> reason, std::int64_t now_ms);
  std::optional<std::uint64_t> oldest_seq(Mutation& m, const Staged& u);
  // Writes the mutation and, on success, applies it to the cache. False
  // (cache untouched) when the write failed.
  bool commit(Mutation& m, bool sync);
  void build_dead_index();
  // Makes an append's messages visible once durable; drops the staging pins.
  void publish(Mutation& m, bool durable);

  const StorePolicy policy_;
  const SyncMode sync_;
  const std::size_t max_dead_letters_;
  std::atomic<std::int64_t> latest_now_ms_{0};  // newest append time, for the dedup compaction filter
  std::atomic<std::uint64_t> generated_id_lookups_{0};
  // Dead-letter ids handed out and written; before the filters that read it.
  std::atomic<std::uint64_t> dead_count_{0};
  std::unique_ptr<rocksdb::CompactionFilter> dedup_filter_;       // outlives database_
  std::unique_ptr<rocksdb::CompactionFilter> dead_index_filter_;  // outlives database_
  std::unique_ptr<InboxDatabase> database_;
  // Borrowed from database_, for brevity.
  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const meta_cf_;
  rocksdb::ColumnFamilyHandle* const messages_cf_;
  rocksdb::ColumnFamilyHandle* const dedup_cf_;
  rocksdb::ColumnFamilyHandle* const collapse_cf_;
  rocksdb::ColumnFamilyHandle* const cursors_cf_;
  rocksdb::ColumnFamilyHandle* const expiry_cf_;
  rocksdb::ColumnFamilyHandle* const dead_cf_;
  rocksdb::ColumnFamilyHandle* const schedule_cf_;
  rocksdb::ColumnFamilyHandle* const schedule_ids_cf_;
  rocksdb::ColumnFamilyHandle* const schedule_keys_cf_;
  rocksdb::ColumnFamilyHandle* const dead_index_cf_;
  rocksdb::ColumnFamilyHandle* const lost_marks_cf_;
  rocksdb::ColumnFamilyHandle* const default_cf_;

  std::mutex write_mu_;                        // serializes mutations
  std::uint64_t next_dead_id_ = 1;             // write_mu_
  std::atomic<bool> write_ok_{true};           // last write succeeded
  std::unique_ptr<Shard[]> shards_;
  std::int64_t next_idle_sweep_ms_ = 0;  // release_idle()'s caller only
  std::size_t idle_sweep_shard_ = 0;     // release_idle()'s caller only

  const std::size_t max_scheduled_;
  std::mutex schedule_mu_;                        // serializes schedule writes
  std::uint64_t next_schedule_id_ = 1;            // schedule_mu_
  std::atomic<std::uint64_t> scheduled_count_{0}; // as written
  std::unique_ptr<WalSyncer> syncer_;          // SyncMode::batch only
};

}  // namespace herald::store
