#include "store/rocksdb/inbox_database.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "core/log.hpp"
#include "store/rocksdb/inbox_layout.hpp"

namespace herald::store {

namespace {

// A rarely written family (dead letters) must not pin old WAL files forever.
constexpr std::uint64_t kMaxWalBytes = 256u << 20;
// Two cores may be all there is; flushes and compactions share them with I/O.
constexpr int kBackgroundJobs = 2;
// Memtable of the families whose keys are rewritten over and over (meta,
// cursors); see where it is used.
constexpr std::size_t kRewrittenFamilyMemtable = 4u << 20;

rocksdb::ColumnFamilyOptions family_options(const rocksdb::BlockBasedTableOptions& table,
                                            rocksdb::CompressionType compression) {
  rocksdb::ColumnFamilyOptions o;
  o.compression = compression;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return o;
}

// LZ4 when this librocksdb was built with it: cheap on CPU, JSON compresses well.
rocksdb::CompressionType best_compression() {
  const auto supported = rocksdb::GetSupportedCompressions();
  const bool lz4 = std::find(supported.begin(), supported.end(), rocksdb::kLZ4Compression) !=
                   supported.end();
  return lz4 ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
}

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }

// Memtable insert hints (ColumnFamilyOptions::memtable_insert_with_hint_prefix_extractor):
// keys with the same "prefix" are inserted starting from where the last one
// went, instead of searching the skip list from the top. Appends are the
// busiest writes and land right after the previous key of their group:
//   messages  user_prefix + be64(seq): the group is the user (all but the seq);
//   expiry    be64(expires_at) + ...:  one group, times only grow;
//   dedup     user_prefix + id: the group is the user; ids are random, but
//             the search starts inside the user's few keys, not at the top.
// Keys outside the pattern insert the usual way.
class InsertHintGroup final : public rocksdb::SliceTransform {
 public:
  enum class Group { all_but_last_8_bytes, one_for_all, user_prefix };
  InsertHintGroup(const char* name, Group group) : name_(name), group_(group) {}
  const char* Name() const override { return name_; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    switch (group_) {
      case Group::all_but_last_8_bytes: return {key.data(), key.size() - 8};
      case Group::one_for_all: return {key.data(), 0};
      case Group::user_prefix: return {key.data(), layout::user_prefix_size({key.data(), key.size()})};
    }
    return {key.data(), 0};
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    if (group_ == Group::user_prefix) return layout::user_prefix_size({key.data(), key.size()}) > 0;
    return key.size() >= 8;
  }

 private:
  const char* name_;
  Group group_;
};

}  // namespace

InboxDatabase::InboxDatabase(std::string path, const rocksdb::CompactionFilter* dedup_filter,
                             const rocksdb::CompactionFilter* dead_index_filter, RocksDbMemory memory)
    : path_(std::move(path)) {
  const auto fail = [&](std::string why) {
    close();
    throw std::runtime_error("rocksdb store: cannot open '" + path_ + "': " + why);
  };
  std::error_code ec;
  std::filesystem::create_directories(path_, ec);
  if (ec) fail(ec.message());

  rocksdb::BlockBasedTableOptions table;
  // Shared by every column family: hot inbox tails and meta stay in memory.
  table.block_cache = rocksdb::NewLRUCache(memory.block_cache_bytes);
  rocksdb::BlockBasedTableOptions point_lookups = table;  // Get-heavy families
  point_lookups.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  const auto compression = best_compression();
  const auto plain = family_options(table, compression);
  const auto bloom = family_options(point_lookups, compression);
  auto messages = plain;
  messages.memtable_insert_with_hint_prefix_extractor =
      std::make_shared<InsertHintGroup>("herald.MessageKeyUser", InsertHintGroup::Group::all_but_last_8_bytes);
  auto expiry = plain;
  expiry.memtable_insert_with_hint_prefix_extractor =
      std::make_shared<InsertHintGroup>("herald.ExpiryKeys", InsertHintGroup::Group::one_for_all);
  auto dedup = bloom;
  dedup.compaction_filter = dedup_filter;
  dedup.memtable_insert_with_hint_prefix_extractor =
      std::make_shared<InsertHintGroup>("herald.DedupKeyUser", InsertHintGroup::Group::user_prefix);

  // Rewritten in place, one key per user or device: every version is a
  // node of the memtable's skip list, and a full 64 MiB list is millions of
  // them, each insert a walk of cache misses from the top. A small memtable
  // stays in the CPU's caches; its flush keeps only the latest versions.
  auto dead_index = bloom;
  dead_index.compaction_filter = dead_index_filter;

  auto meta = bloom;
  meta.write_buffer_size = kRewrittenFamilyMemtable;
  auto cursors = plain;
  cursors.write_buffer_size = kRewrittenFamilyMemtable;
  auto lost_marks = bloom;  // read by point lookups, at connect
  lost_marks.write_buffer_size = kRewrittenFamilyMemtable;

  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.max_background_jobs = kBackgroundJobs;
  // All memtables together; thirteen column families must not each take 64 MiB.
  options.db_write_buffer_size = memory.write_buffer_bytes;
  options.max_total_wal_size = kMaxWalBytes;
  options.keep_log_file_num = 4;  // rocksdb's own info LOG files
  options.max_log_file_size = 16u << 20;  // ...each at most 16 MiB (unbounded by default)

  // Same order as Family.
  const std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, plain}, {layout::kMetaCf, meta},
      {layout::kMessagesCf, messages},            {layout::kDedupCf, dedup},
      {layout::kCollapseCf, bloom},               {layout::kCursorsCf, cursors},
      {layout::kExpiryCf, expiry},                {layout::kDeadCf, plain},
      {layout::kScheduleCf, plain},               {layout::kScheduleIdsCf, bloom},
      {layout::kScheduleKeysCf, bloom},          {layout::kDeadIndexCf, dead_index},
      {layout::kLostMarksCf, lost_marks}};
  // A directory of an earlier version gets the column families it lacks;
  // after that, that version cannot open it (rocksdb refuses unknown ones).
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(options, path_, &existing).ok() && !existing.empty()) {
    std::vector<std::string> added;
    for (const auto& f : families) {
      if (std::find(existing.begin(), existing.end(), f.name) == existing.end()) added.push_back(f.name);
    }
    if (!added.empty()) {
      std::string names;
      for (const auto& n : added) names += (names.empty() ? "" : ",") + n;
      log::warn("rocksdb store: adding column families to a data directory of an earlier version; "
                "earlier versions cannot open it afterwards",
                {{"path", path_}, {"column_families", names}});
    }
  }
  const auto status = rocksdb::DB::Open(options, path_, families, &handles_, &db_);
  if (!status.ok()) {
    db_ = nullptr;
    handles_.clear();
    std::string why = status.ToString();
    if (why.find("lock") != std::string::npos || why.find("LOCK") != std::string::npos) {
      why += " (the data directory is in use by another herald store)";
    } else if (why.find("Column families not opened") != std::string::npos) {
      why += " (the data directory was written by a later version of herald: run that version)";
    }
    fail(why);
  }

  std::string value;
  auto* defaults = family(Family::defaults);
  auto s = db_->Get(rocksdb::ReadOptions(), defaults, slice(layout::kFormatKey), &value);
  if (s.IsNotFound()) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    s = db_->Put(wo, defaults, slice(layout::kFormatKey), slice(layout::kFormatValue));
    if (!s.ok()) fail(s.ToString());
  } else if (!s.ok()) {
    fail(s.ToString());
  } else if (value == layout::kFormatValueV1) {
    // Format 1 data reads as it is; marked 2 before any run entry is
    // written, so that an older binary refuses the store instead of
    // sweeping only the first message of each run.
    rocksdb::WriteOptions wo;
    wo.sync = true;
    s = db_->Put(wo, defaults, slice(layout::kFormatKey), slice(layout::kFormatValue));
    if (!s.ok()) fail(s.ToString());
  } else if (value != layout::kFormatValue) {
    fail("unknown store format '" + value + "'");
  }
}

InboxDatabase::~InboxDatabase() { close(); }

void InboxDatabase::close() {
  if (db_ == nullptr) return;
  (void)db_->SyncWAL();  // under sync=none too: a clean shutdown loses nothing
  for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
  handles_.clear();
  (void)db_->Close();
  delete db_;
  db_ = nullptr;
}

}  // namespace herald::store
