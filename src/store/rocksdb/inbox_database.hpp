#pragma once
// The RocksDB database under RocksDbInboxStore, opened with the column
// families of inbox_layout.hpp and the options below (each with its
// reason), its format checked. Owns the DB and its column family handles;
// closing syncs the WAL first. Thread-safe as rocksdb::DB is. Knows nothing
// of inboxes.
#include <cstddef>
#include <string>
#include <vector>

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class CompactionFilter;
}  // namespace rocksdb

namespace herald::store {

// Column families, in the order they are opened.
enum class Family : std::size_t {
  defaults, meta, messages, dedup, collapse, cursors, expiry, dead,
  schedule, schedule_ids, schedule_keys, dead_index, lost_marks
};

// What RocksDB may hold in memory: every memtable together, and the block
// cache shared by the families (config rocksdb_write_buffer_bytes,
// rocksdb_block_cache_bytes).
struct RocksDbMemory {
  std::size_t write_buffer_bytes = 128u << 20;
  std::size_t block_cache_bytes = 64u << 20;
};

class InboxDatabase final {
 public:
  // Opens or creates the database at path (directories included). The
  // filter runs on the dedup family and must outlive this. Throws
  // std::runtime_error naming the path and the cause: locked by another
  // process or store, unreadable, or an unknown format.
  InboxDatabase(std::string path, const rocksdb::CompactionFilter* dedup_filter,
                const rocksdb::CompactionFilter* dead_index_filter, RocksDbMemory memory = {});
  ~InboxDatabase();
  InboxDatabase(const InboxDatabase&) = delete;
  InboxDatabase& operator=(const InboxDatabase&) = delete;

  rocksdb::DB* db() const { return db_; }
  rocksdb::ColumnFamilyHandle* family(Family f) const { return handles_[static_cast<std::size_t>(f)]; }
  const std::string& path() const { return path_; }

 private:
  void close();

  const std::string path_;
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

}  // namespace herald::store
