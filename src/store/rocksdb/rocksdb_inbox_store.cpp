// RocksDbInboxStore: opening and closing the database, and the bounded
// cache of per-user inbox state. Writes are in rocksdb_inbox_mutations.cpp,
// reads in rocksdb_inbox_reads.cpp, the schedule in rocksdb_schedule.cpp.
#include "store/rocksdb/rocksdb_inbox_store.hpp"

#include <rocksdb/compaction_filter.h>

#include <functional>
#include <stdexcept>

#include "store/rocksdb/inbox_database.hpp"
#include "store/rocksdb/rocksdb_inbox_state.hpp"
#include "store/rocksdb/wal_syncer.hpp"

namespace herald::store {

using rocks::slice;
using rocks::view;

namespace {

constexpr std::size_t kShards = 64;
// 64 x 8192 inboxes (~300 bytes each with a few devices) stay cached; the
// rest reload from disk on use.
constexpr std::size_t kCachedInboxesPerShard = 8192;
// Every shard is swept for unused inboxes once per period, so an inbox
// leaves the cache after one to two periods without use. A reload costs a
// point read and a short scan, far below the delivery it precedes.
constexpr std::int64_t kIdleSweepMs = 5000;

// Drops dedup entries whose window has passed (PROTOCOL.md 7) when their
// files are compacted, so the dedup family does not grow without bound.
// Judged by the newest append time, the same clock append() compares with.
class DedupWindowFilter final : public rocksdb::CompactionFilter {
 public:
  DedupWindowFilter(const std::atomic<std::int64_t>& latest_now_ms, std::int64_t window_ms)
      : latest_now_ms_(latest_now_ms), window_ms_(window_ms) {}

  bool Filter(int /*level*/, const rocksdb::Slice& /*key*/, const rocksdb::Slice& value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    const std::int64_t now = latest_now_ms_.load(std::memory_order_relaxed);
    const auto d = layout::decode_dedup(view(value));
    return now > 0 && d && d->accepted_ms + window_ms_ < now;
  }
  const char* Name() const override { return "herald.DedupWindowFilter"; }

 private:
  const std::atomic<std::int64_t>& latest_now_ms_;
  const std::int64_t window_ms_;
};

// Drops dead_index entries of letters the bounded log has dropped (ids up
// to dead_count - max), so the index does not outgrow the log.
class DeadIndexFilter final : public rocksdb::CompactionFilter {
 public:
  DeadIndexFilter(const std::atomic<std::uint64_t>& dead_count, std::size_t max_dead_letters)
      : dead_count_(dead_count), max_(max_dead_letters) {}

  bool Filter(int /*level*/, const rocksdb::Slice& /*key*/, const rocksdb::Slice& value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    const std::uint64_t count = dead_count_.load(std::memory_order_relaxed);
    return value.size() == 8 && count > max_ && layout::get_be64(view(value)) <= count - max_;
  }
  const char* Name() const override { return "herald.DeadIndexFilter"; }

 private:
  const std::atomic<std::uint64_t>& dead_count_;
  const std::uint64_t max_;
};

}  // namespace

// ---- open and close ----

RocksDbInboxStore::RocksDbInboxStore(std::string path, StorePolicy policy, SyncMode sync,
                                     std::chrono::milliseconds sync_batch,
                                     std::size_t max_dead_letters, std::size_t max_scheduled,
                                     RocksDbMemory memory)
    : policy_(policy),
      sync_(sync),
      max_dead_letters_(std::max<std::size_t>(max_dead_letters, 1)),
      dedup_filter_(std::make_unique<DedupWindowFilter>(latest_now_ms_, policy.dedup_window_ms)),
      dead_index_filter_(std::make_unique<DeadIndexFilter>(dead_count_, max_dead_letters_)),
      database_(std::make_unique<InboxDatabase>(std::move(path), dedup_filter_.get(), dead_index_filter_.get(),
                                                memory)),
      db_(database_->db()),
      meta_cf_(database_->family(Family::meta)),
      messages_cf_(database_->family(Family::messages)),
      dedup_cf_(database_->family(Family::dedup)),
      collapse_cf_(database_->family(Family::collapse)),
      cursors_cf_(database_->family(Family::cursors)),
      expiry_cf_(database_->family(Family::expiry)),
      dead_cf_(database_->family(Family::dead)),
      schedule_cf_(database_->family(Family::schedule)),
      schedule_ids_cf_(database_->family(Family::schedule_ids)),
      schedule_keys_cf_(database_->family(Family::schedule_keys)),
      dead_index_cf_(database_->family(Family::dead_index)),
      lost_marks_cf_(database_->family(Family::lost_marks)),
      default_cf_(database_->family(Family::defaults)),
      shards_(std::make_unique<Shard[]>(kShards)),
      max_scheduled_(max_scheduled) {
  // A counter kept in the default family, absent in a new database.
  const auto read_counter = [&](std::string_view key, std::uint64_t fallback, const char* what) {
    std::string value;
    const auto s = db_->Get(rocksdb::ReadOptions(), default_cf_, slice(key), &value);
    if (s.ok() && value.size() == 8) return layout::get_be64(value);
    if (s.IsNotFound()) return fallback;
    throw std::runtime_error("rocksdb store: cannot open '" + database_->path() + "': " + what +
                             ": " + (s.ok() ? std::string("bad value") : s.ToString()));
  };
  next_dead_id_ = read_counter(layout::kNextDeadIdKey, 1, "next dead-letter id");
  dead_count_.store(next_dead_id_ - 1);
  next_schedule_id_ = read_counter(layout::kNextScheduleIdKey, 1, "next schedule id");
  scheduled_count_.store(read_counter(layout::kScheduledCountKey, 0, "scheduled count"));
  build_dead_index();
  if (sync_ == SyncMode::batch) {
    syncer_ = std::make_unique<WalSyncer>([this] { return db_->FlushWAL(true).ok(); }, sync_batch);
  }
}

RocksDbInboxStore::~RocksDbInboxStore() {
  syncer_.reset();  // fsyncs what batch-mode appends left in the WAL
  database_.reset();
}

// ---- cache ----

RocksDbInboxStore::Shard& RocksDbInboxStore::shard_of(std::string_view user) {
  return shards_[std::hash<std::string_view>{}(user) % kShards];
}

RocksDbInboxStore::CachedInbox* RocksDbInboxStore::find_or_load_locked(Shard& s,
                                                                       std::string_view user,
                                                                       bool& io_error) {
  if (auto it = s.inboxes.find(user); it != s.inboxes.end()) {
    it->second.used = true;
    return &it->second;
  }
  CachedInbox e;
  if (!load(user, e, io_error)) return nullptr;
  CachedInbox* out = &s.inboxes.emplace(std::string(user), std::move(e)).first->second;
  evict_locked(s, user);
  return out;
}

const RocksDbInboxStore::CachedInbox* RocksDbInboxStore::peek_locked(Shard& s, std::string_view user,
                                                                     CachedInbox& scratch, bool& io_error,
                                                                     Devices devices) {
  if (auto it = s.inboxes.find(user); it != s.inboxes.end()) {
    it->second.used = true;
    return &it->second;
  }
  return load(user, scratch, io_error, devices) ? &scratch : nullptr;
}

bool RocksDbInboxStore::load(std::string_view user, CachedInbox& e, bool& io_error, Devices devices) {
  std::string value;
  auto status = db_->Get(rocksdb::ReadOptions(), meta_cf_, slice(user), &value);
  if (status.IsNotFound()) return false;
  auto meta = status.ok() ? layout::decode_meta(value) : std::nullopt;
  if (!meta) {
    // An unreadable meta must not look like a new inbox: that would restart
    // seqs under the old epoch.
    io_error = true;
    return false;
  }
  // Nothing of this inbox awaits a sync: an append caches and pins every
  // inbox it stages, a new one included, before it writes, and until its
  // write is durable.
  e.visible_head = meta->head_seq;
  e.meta = std::move(*meta);
  if (devices == Devices::skip) return true;

  const std::string prefix = layout::user_prefix(user);
  const std::string end = layout::user_prefix_end(user);
  const rocksdb::Slice upper = slice(end);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cursors_cf_));
  for (it->Seek(slice(prefix)); it->Valid(); it->Next()) {
    if (it->value().size() != 8) continue;
    e.devices.emplace(view(it->key()).substr(prefix.size()), layout::get_be64(view(it->value())));
  }
  if (!it->status().ok()) {
    io_error = true;
    return false;
  }
  return true;
}

void RocksDbInboxStore::release_idle(std::int64_t now_ms) {
  if (now_ms < next_idle_sweep_ms_) return;
  next_idle_sweep_ms_ = now_ms + kIdleSweepMs / static_cast<std::int64_t>(kShards);
  Shard& s = shards_[idle_sweep_shard_];
  idle_sweep_shard_ = (idle_sweep_shard_ + 1) % kShards;
  std::lock_guard lock(s.mu);
  for (auto it = s.inboxes.begin(); it != s.inboxes.end();) {
    CachedInbox& e = it->second;
    if (e.pins == 0 && !e.used) {
      it = s.inboxes.erase(it);
    } else {
      e.used = false;
      ++it;
    }
  }
}

std::size_t RocksDbInboxStore::cached_inboxes() {
  std::size_t n = 0;
  for (std::size_t i = 0; i < kShards; ++i) {
    std::lock_guard lock(shards_[i].mu);
    n += shards_[i].inboxes.size();
  }
  return n;
}

void RocksDbInboxStore::evict_locked(Shard& s, std::string_view keep) {
  for (auto it = s.inboxes.begin(); s.inboxes.size() > kCachedInboxesPerShard && it != s.inboxes.end();) {
    if (it->second.pins == 0 && it->first != keep) {
      it = s.inboxes.erase(it);
    } else {
      ++it;
    }
  }
}

// A store from before dead_index has dead letters it does not cover: index
// them once, at open.
void RocksDbInboxStore::build_dead_index() {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), default_cf_, slice(layout::kDeadIndexBuiltKey), &value);
  if (s.ok()) return;
  const auto fail = [&](const rocksdb::Status& st) {
    throw std::runtime_error("rocksdb store: cannot open '" + database_->path() +
                             "': indexing dead letters: " + st.ToString());
  };
  if (!s.IsNotFound()) fail(s);
  rocksdb::WriteBatch batch;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), dead_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != 8) continue;
    const std::uint64_t id = layout::get_be64(view(it->key()));
    const auto d = layout::decode_dead_letter(view(it->value()), id);
    if (!d) continue;
    batch.Put(dead_index_cf_, layout::message_key(d->user, d->seq), layout::be64(id));
    if (batch.Count() >= 10000) {
      if (s = db_->Write(rocksdb::WriteOptions(), &batch); !s.ok()) fail(s);
      batch.Clear();
    }
  }
  if (!it->status().ok()) fail(it->status());
  batch.Put(default_cf_, slice(layout::kDeadIndexBuiltKey), "1");
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (s = db_->Write(wo, &batch); !s.ok()) fail(s);
}

bool RocksDbInboxStore::healthy() {
  return write_ok_.load() && (syncer_ == nullptr || syncer_->healthy());
}

}  // namespace herald::store
