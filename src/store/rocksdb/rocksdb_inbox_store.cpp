#include "store/rocksdb/rocksdb_inbox_store.hpp"

#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <array>
#include <deque>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <unordered_map>

#include <boost/container/flat_map.hpp>

#include "core/ids.hpp"
#include "core/string_map.hpp"
#include "store/rocksdb/inbox_database.hpp"
#include "store/rocksdb/inbox_layout.hpp"
#include "store/rocksdb/wal_syncer.hpp"

namespace herald::store {

namespace {

using layout::UserMeta;

constexpr std::size_t kShards = 64;
// 64 x 8192 inboxes (~300 bytes each with a few devices) stay cached; the
// rest reload from disk on use.
constexpr std::size_t kCachedInboxesPerShard = 8192;
// Every shard is swept for unused inboxes once per period, so an inbox
// leaves the cache after one to two periods without use. A reload costs a
// point read and a short scan, far below the delivery it precedes.
constexpr std::int64_t kIdleSweepMs = 5000;
// Expiry-index entries of messages already gone that one expire() call may
// drop beyond its budget, so a call stays bounded.
constexpr std::size_t kExpireStaleScan = 4096;
// How far apart the expiry times of one expiry entry's messages may be (see
// add_expiry()).
constexpr std::int64_t kExpiryRunSpreadMs = 1000;

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

// device -> cursor. A sorted vector: a user has a few devices, and each
// cached inbox pays for the container (24 bytes, one block for all devices,
// against 48 and an 80-byte node per device for a std::map).
using DeviceMap = boost::container::flat_map<std::string, std::uint64_t, std::less<>>;

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

// ---- cache and mutation state ----

struct RocksDbInboxStore::CachedInbox {
  UserMeta meta;                   // as last written
  DeviceMap devices;               // device -> cursor, as last written
  std::uint64_t visible_head = 0;  // highest seq readers may see: durable under the policy
  std::uint32_t pins = 0;          // mutations in flight holding it: not evictable
  bool used = true;                // used since its shard's last idle sweep
};

struct RocksDbInboxStore::Shard {
  std::mutex mu;
  StringMap<CachedInbox> inboxes;
};

// One user's state inside a mutation: a copy of the cache, changed freely,
// applied to the cache only once the write succeeded.
struct RocksDbInboxStore::Staged {
  std::string user;
  UserMeta meta;
  DeviceMap devices;
  bool created = false;     // no inbox before this mutation (no cache entry pinned)
  bool pinned = false;      // this mutation holds a pin on the user's cache entry
  bool meta_dirty = false;  // meta must be written
  // Seqs written by this mutation and still there, ascending (appends come
  // in seq order).
  std::vector<std::uint64_t> appended;
  // The expiry entry this mutation's appends are gathering, written when a
  // seq does not extend it and at commit (see add_expiry()).
  struct ExpiryRun {
    std::uint64_t first;
    std::uint64_t last;
    std::int64_t earliest_ms;
    std::int64_t latest_ms;
  };
  std::optional<ExpiryRun> expiry_run;
};

// Everything one mutation reads and writes: its writes, and for the
// families a mutation reads back (messages, dedup, collapse) an overlay of
// what it wrote there, so later items of a batch see earlier ones (dedup,
// collapse, trim of the same user). An indexed batch (WriteBatchWithIndex)
// did the same but spent most of an append comparing batch entries.
//
// The writes go to RocksDB sorted by family and key (stable, so writes of
// one key keep their order): the memtable's skip list then inserts each key
// next to the one before it, where a group commit in arrival order jumped
// across every user's range and searched from the top each time
// (docs/benchmarks.md, durable, "2026-11-30: the store worker's write path").
class RocksDbInboxStore::Mutation {
 public:
  Mutation(rocksdb::DB* db, std::uint64_t first_dead_id, std::array<rocksdb::ColumnFamilyHandle*, 3> read_back)
      : next_dead_id(first_dead_id), db_(db), read_back_(read_back) {}

  // Reads key through the overlay, then the database. A read error marks
  // the mutation failed.
  bool get(rocksdb::ColumnFamilyHandle* cf, std::string_view key, std::string* value) {
    if (const auto* o = overlay(cf)) {
      if (auto it = o->find(key); it != o->end()) {
        if (!it->second->value) return false;
        *value = *it->second->value;
        return true;
      }
    }
    const auto s = db_->Get(rocksdb::ReadOptions(), cf, slice(key), value);
    if (!s.ok() && !s.IsNotFound()) failed = true;
    return s.ok();
  }
  void put(rocksdb::ColumnFamilyHandle* cf, std::string_view key, std::string value) {
    record(cf, key, std::move(value));
  }
  void del(rocksdb::ColumnFamilyHandle* cf, std::string_view key) { record(cf, key, std::nullopt); }
  // Deleted by this mutation (a read-back family only).
  bool deleted(rocksdb::ColumnFamilyHandle* cf, std::string_view key) const {
    const auto* o = overlay(cf);
    if (o == nullptr) return false;
    auto it = o->find(key);
    return it != o->end() && !it->second->value;
  }
  bool changed() const { return !writes_.empty(); }
  // The writes so far as one batch, in (family, key) order.
  rocksdb::WriteBatch* write_batch() {
    // Ties (writes of one key) keep their order by `n`: std::sort on
    // (family, key, n) is cheaper than a stable merge sort.
    std::vector<const Write*> order;
    order.reserve(writes_.size());
    for (const auto& w : writes_) order.push_back(&w);
    std::sort(order.begin(), order.end(), [](const Write* a, const Write* b) {
      if (a->cf_id != b->cf_id) return a->cf_id < b->cf_id;
      if (const int c = a->key.compare(b->key); c != 0) return c < 0;
      return a->n < b->n;
    });
    batch_.Clear();
    for (const auto* w : order) {
      if (w->value) batch_.Put(w->cf, slice(w->key), slice(*w->value));
      else batch_.Delete(w->cf, slice(w->key));
    }
    return &batch_;
  }

  StringMap<Staged> users;
  bool fills_cache = false;    // an append: its users are cached (and pinned until durable)
  std::uint64_t next_dead_id;  // the id the next dead letter of this mutation gets
  bool dead_written = false;   // next_dead_id must be written
  bool failed = false;         // a read or the write failed: nothing is applied

 private:
  struct Write {
    rocksdb::ColumnFamilyHandle* cf;
    std::uint32_t cf_id;  // cf->GetID(), asked once (a virtual call)
    std::size_t n;        // position among the writes
    std::string key;
    std::optional<std::string> value;  // none: a delete
  };
  // A read-back family's latest write of each key: views of the writes
  // themselves (a deque does not move its elements), so a put copies
  // neither its key nor its value a second time.
  using Overlay = std::unordered_map<std::string_view, const Write*>;

  void record(rocksdb::ColumnFamilyHandle* cf, std::string_view key, std::optional<std::string> value) {
    const Write& w = writes_.emplace_back(Write{cf, cf->GetID(), writes_.size(), std::string(key), std::move(value)});
    if (auto* o = overlay(cf)) (*o)[w.key] = &w;
  }
  Overlay* overlay(rocksdb::ColumnFamilyHandle* cf) {
    for (std::size_t i = 0; i < read_back_.size(); ++i) {
      if (read_back_[i] == cf) return &overlays_[i];
    }
    return nullptr;
  }
  const Overlay* overlay(rocksdb::ColumnFamilyHandle* cf) const {
    return const_cast<Mutation*>(this)->overlay(cf);
  }

  rocksdb::DB* const db_;
  const std::array<rocksdb::ColumnFamilyHandle*, 3> read_back_;
  std::array<Overlay, 3> overlays_;
  std::deque<Write> writes_;
  rocksdb::WriteBatch batch_;
};

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

// ---- mutations ----

RocksDbInboxStore::Staged* RocksDbInboxStore::stage(Mutation& m, std::string_view user,
                                                    bool create) {
  if (auto it = m.users.find(user); it != m.users.end()) return &it->second;
  Staged st;
  st.user = std::string(user);
  {
    Shard& s = shard_of(user);
    std::lock_guard lock(s.mu);
    bool io_error = false;
    // An append caches its users; other mutations change the cached state
    // when there is one and only the disk otherwise.
    CachedInbox scratch;
    CachedInbox* cached = nullptr;
    if (m.fills_cache) {
      cached = find_or_load_locked(s, user, io_error);
    } else if (auto it = s.inboxes.find(user); it != s.inboxes.end()) {
      cached = &it->second;
    }
    if (cached != nullptr) {
      ++cached->pins;
      st.pinned = true;
      st.meta = cached->meta;
      st.devices = cached->devices;
    } else if (!m.fills_cache && load(user, scratch, io_error)) {
      st.meta = std::move(scratch.meta);
      st.devices = std::move(scratch.devices);
    } else if (io_error) {
      m.failed = true;
      return nullptr;
    } else if (!create) {
      return nullptr;
    } else {
      st.created = true;
      st.meta_dirty = true;
      st.meta.epoch = random_hex(8);  // PROTOCOL.md 1: a new inbox, a new epoch
      if (m.fills_cache) {
        // Cached and pinned, with nothing visible, before the write: a
        // reader must find this, not the new inbox on disk before it is
        // durable (and then a lower head here, once cached).
        CachedInbox& e = s.inboxes.try_emplace(st.user).first->second;
        e.meta = st.meta;
        e.pins = 1;
        st.pinned = true;
        evict_locked(s, user);
      }
    }
  }
  return &m.users.emplace(st.user, std::move(st)).first->second;
}

AppendResult RocksDbInboxStore::append_one(Mutation& m, const NewMessage& msg,
                                           std::int64_t now_ms) {
  Staged* u = stage(m, msg.user, true);
  if (u == nullptr) return {};

  // Dedup window (PROTOCOL.md 7); the batch is searched too. An id the
  // API generated has no entry while its message is retained (see
  // find_generated_id()), so one sent back is looked for there.
  const std::string dedup_key = layout::user_key(msg.user, msg.id);
  std::string value;
  if (!msg.id_generated) {
    if (m.get(dedup_cf_, dedup_key, &value)) {
      const auto d = layout::decode_dedup(value);
      if (d && d->accepted_ms + policy_.dedup_window_ms >= now_ms) return {d->seq, msg.id, true};
    } else if (has_generated_id_shape(msg.id) && !m.failed) {
      if (const auto seq = find_generated_id(m, *u, msg.id, now_ms)) return {*seq, msg.id, true};
    }
    if (m.failed) return {};
    // PROTOCOL.md 10: dedup covers scheduled messages. The schedule index
    // shares the dedup key; with nothing scheduled there is nothing to read.
    if (!msg.from_schedule && scheduled_count_.load() > 0) {
      const auto s = db_->Get(rocksdb::ReadOptions(), schedule_keys_cf_, slice(dedup_key), &value);
      if (s.ok()) return {0, msg.id, true, true};
      if (!s.IsNotFound()) {
        m.failed = true;
        return {};
      }
    }
  }

  StoredMessage rec;
  rec.seq = ++u->meta.head_seq;
  rec.id = msg.id;
  rec.event = msg.event;
  rec.data_json = msg.data_json;
  rec.collapse_key = msg.collapse_key;
  rec.trace_id = msg.trace_id;
  rec.ts_ms = msg.accepted_at_ms;
  rec.expires_at_ms = msg.accepted_at_ms + (msg.ttl_ms > 0 ? msg.ttl_ms : policy_.retention_ttl_ms);
  const std::uint64_t seq = rec.seq;
  u->meta_dirty = true;
  ++u->meta.count;
  m.put(messages_cf_, layout::message_key(msg.user, seq), layout::encode_message(rec));
  if (!msg.id_generated) m.put(dedup_cf_, dedup_key, layout::encode_dedup({seq, now_ms}));
  add_expiry(m, *u, seq, rec.expires_at_ms);
  u->appended.push_back(seq);

  // Collapse (PROTOCOL.md 1c): the older message with this key leaves, silently.
  if (!msg.collapse_key.empty()) {
    const std::string collapse_key = layout::user_key(msg.user, msg.collapse_key);
    if (m.get(collapse_cf_, collapse_key, &value) && value.size() == 8) {
      remove_message(m, *u, layout::get_be64(value), std::nullopt, now_ms);
    }
    m.put(collapse_cf_, collapse_key, layout::be64(seq));
  }

  // Retention cap (PROTOCOL.md 1b): oldest first.
  while (u->meta.count > policy_.retention_max_messages && !m.failed) {
    const auto oldest = oldest_seq(m, *u);
    if (!oldest) {
      if (!m.failed) u->meta.count = 0;  // the count was ahead of the disk: trust the disk
      break;
    }
    remove_message(m, *u, *oldest, DeadReason::trimmed, now_ms);
    u->meta.low_seq = *oldest + 1;
  }
  return {seq, msg.id, false};
}

// The appends of one user in one mutation share an expiry entry while
// their seqs follow each other and their expiry times lie within
// kExpiryRunSpreadMs of the earliest: a group commit then writes one
// expiry key per user where it wrote one per message. The entry is keyed
// by the latest time, so no message is swept before its time and none more
// than the spread after it; reads skip an expired message whether or not
// it has been swept.
void RocksDbInboxStore::add_expiry(Mutation& m, Staged& u, std::uint64_t seq, std::int64_t expires_at_ms) {
  if (auto& run = u.expiry_run; run && seq == run->last + 1 && expires_at_ms >= run->earliest_ms &&
                                expires_at_ms - run->earliest_ms <= kExpiryRunSpreadMs) {
    run->last = seq;
    run->latest_ms = std::max(run->latest_ms, expires_at_ms);
    return;
  }
  flush_expiry(m, u);
  u.expiry_run = Staged::ExpiryRun{seq, seq, expires_at_ms, expires_at_ms};
}

void RocksDbInboxStore::flush_expiry(Mutation& m, Staged& u) {
  if (!u.expiry_run) return;
  const auto& run = *u.expiry_run;
  m.put(expiry_cf_, layout::expiry_key(run.latest_ms, u.user, run.first), layout::expiry_run_value(run.first, run.last));
  u.expiry_run.reset();
}

// A message of u's, still retained and accepted within the dedup window,
// whose id is `id`: how a generated id sent back is found, since the append
// writes no dedup entry for it (one key fewer per message on the group
// commit). Newest first, over at most the retained messages (the retention
// cap); only publishes whose id has the generated shape and no dedup entry
// come here. Messages of this mutation are not searched: their generated
// ids have not been answered yet, and a publisher's own ids have entries.
std::optional<std::uint64_t> RocksDbInboxStore::find_generated_id(Mutation& m, const Staged& u, std::string_view id,
                                                                  std::int64_t now_ms) {
  generated_id_lookups_.fetch_add(1, std::memory_order_relaxed);
  const std::string lower = layout::message_key(u.user, u.meta.low_seq);
  const std::string upper = layout::user_prefix_end(u.user);
  const rocksdb::Slice lower_slice = slice(lower);
  const rocksdb::Slice upper_slice = slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, messages_cf_));
  const std::size_t prefix_size = lower.size() - 8;
  for (it->SeekToLast(); it->Valid(); it->Prev()) {
    const std::string_view key = view(it->key());
    if (key.size() != prefix_size + 8 || m.deleted(messages_cf_, key)) continue;
    const std::uint64_t seq = layout::get_be64(key.substr(prefix_size));
    const auto rec = layout::decode_message(view(it->value()), seq);
    if (!rec || rec->id != id) continue;
    if (rec->ts_ms + policy_.dedup_window_ms < now_ms) return std::nullopt;
    return seq;
  }
  if (!it->status().ok()) m.failed = true;
  return std::nullopt;
}

std::optional<std::uint64_t> RocksDbInboxStore::oldest_seq(Mutation& m, const Staged& u) {
  // Messages this mutation appended are newer than any on disk.
  const std::optional<std::uint64_t> appended =
      u.appended.empty() ? std::nullopt : std::optional<std::uint64_t>(u.appended.front());
  const std::string prefix = layout::user_prefix(u.user);
  const std::string end = layout::user_prefix_end(u.user);
  const rocksdb::Slice upper = slice(end);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, messages_cf_));
  for (it->Seek(layout::message_key(u.user, u.meta.low_seq)); it->Valid(); it->Next()) {
    const std::string_view key = view(it->key());
    if (key.size() != prefix.size() + 8 || !key.starts_with(prefix)) break;
    if (m.deleted(messages_cf_, key)) continue;  // removed earlier in this mutation
    return layout::get_be64(key.substr(prefix.size()));
  }
  if (!it->status().ok()) {
    m.failed = true;
    return std::nullopt;
  }
  return appended;
}

bool RocksDbInboxStore::remove_message(Mutation& m, Staged& u, std::uint64_t seq,
                                       std::optional<DeadReason> reason, std::int64_t now_ms) {
  const std::string key = layout::message_key(u.user, seq);
  std::string value;
  if (!m.get(messages_cf_, key, &value)) return false;
  m.del(messages_cf_, key);
  if (auto it = std::lower_bound(u.appended.begin(), u.appended.end(), seq);
      it != u.appended.end() && *it == seq) {
    u.appended.erase(it);
  }
  u.meta.count -= std::min<std::uint64_t>(u.meta.count, 1);
  u.meta_dirty = true;
  const auto rec = layout::decode_message(value, seq);
  if (!rec) return true;  // unreadable: gone, with nothing left to tell about it

  // Its expiry entry stays: one entry may cover a run of seqs, and the
  // sweep passes over messages already gone.
  // A generated id had no dedup entry while the message was retained; one
  // that leaves within the window leaves one behind (PROTOCOL.md 7).
  if (has_generated_id_shape(rec->id) && rec->ts_ms + policy_.dedup_window_ms >= now_ms) {
    m.put(dedup_cf_, layout::user_key(u.user, rec->id), layout::encode_dedup({seq, rec->ts_ms}));
  }
  if (!rec->collapse_key.empty()) {
    const std::string collapse_key = layout::user_key(u.user, rec->collapse_key);
    std::string current;
    if (m.get(collapse_cf_, collapse_key, &current) && current.size() == 8 &&
        layout::get_be64(current) == seq) {
      m.del(collapse_cf_, collapse_key);
    }
  }
  if (!reason) return true;

  // Dead only if some device had not acked it (PROTOCOL.md 10); with no
  // device at all, nobody did.
  bool unacked = u.devices.empty();
  for (const auto& [device, cursor] : u.devices) {
    if (!device_acked(u.user, device, cursor, seq)) unacked = true;
  }
  if (!unacked) return true;
  u.meta.max_lost_seq = std::max(u.meta.max_lost_seq, seq);
  const DeadLetter d{m.next_dead_id++, u.user,  seq,       rec->id, rec->event, rec->data_json,
                     *reason,          rec->ts_ms, now_ms};
  m.put(dead_cf_, layout::be64(d.id), layout::encode_dead_letter(d));
  m.put(dead_index_cf_, layout::message_key(u.user, seq), layout::be64(d.id));
  if (d.id > max_dead_letters_) m.del(dead_cf_, layout::be64(d.id - max_dead_letters_));
  m.dead_written = true;
  return true;
}

bool RocksDbInboxStore::commit(Mutation& m, bool sync) {
  if (!m.failed) {
    for (auto& [user, st] : m.users) flush_expiry(m, st);
    if (m.dead_written) {
      m.put(default_cf_, layout::kNextDeadIdKey, layout::be64(m.next_dead_id));
    }
    for (const auto& [user, st] : m.users) {
      if (st.meta_dirty) m.put(meta_cf_, user, layout::encode_meta(st.meta));
    }
    if (m.changed()) {
      rocksdb::WriteOptions wo;
      wo.sync = sync;
      const bool ok = db_->Write(wo, m.write_batch()).ok();
      write_ok_.store(ok);
      m.failed = !ok;
    }
  }
  if (m.failed) {
    for (const auto& [user, st] : m.users) {
      if (!st.pinned) continue;
      Shard& s = shard_of(user);
      std::lock_guard lock(s.mu);
      auto it = s.inboxes.find(user);
      if (it == s.inboxes.end()) continue;
      if (st.created) {
        s.inboxes.erase(it);  // never written
      } else {
        --it->second.pins;
      }
    }
    m.users.clear();
    return false;
  }
  if (m.dead_written) {
    next_dead_id_ = m.next_dead_id;
    dead_count_.store(m.next_dead_id - 1);
  }
  for (const auto& [user, st] : m.users) {
    if (!st.pinned) continue;  // not cached: the disk has it
    Shard& s = shard_of(user);
    std::lock_guard lock(s.mu);
    auto it = s.inboxes.find(user);
    if (it == s.inboxes.end()) continue;  // cannot be: pinned entries stay
    CachedInbox& e = it->second;
    e.meta = st.meta;
    e.devices = st.devices;
    e.used = true;
    evict_locked(s, user);
  }
  return true;
}

void RocksDbInboxStore::publish(Mutation& m, bool durable) {
  for (const auto& [user, st] : m.users) {
    if (!st.pinned) continue;
    Shard& s = shard_of(user);
    std::lock_guard lock(s.mu);
    auto it = s.inboxes.find(user);
    if (it == s.inboxes.end()) continue;
    if (durable) it->second.visible_head = std::max(it->second.visible_head, st.meta.head_seq);
    if (it->second.pins > 0) --it->second.pins;
  }
}

std::vector<AppendOutcome> RocksDbInboxStore::append(std::span<const NewMessage> batch,
                                                     std::int64_t now_ms) {
  std::vector<AppendOutcome> out;
  if (batch.empty()) return out;
  std::unique_lock lock(write_mu_);
  if (now_ms > latest_now_ms_.load(std::memory_order_relaxed)) latest_now_ms_.store(now_ms);
  Mutation m(db_, next_dead_id_, {messages_cf_, dedup_cf_, collapse_cf_});
  m.fills_cache = true;
  std::vector<AppendResult> results;
  results.reserve(batch.size());
  for (const auto& msg : batch) {
    results.push_back(append_one(m, msg, now_ms));
    if (m.failed) break;
  }
  // One WriteBatch for the whole group; under always, one fsync.
  bool ok = commit(m, sync_ == SyncMode::always);
  if (ok && sync_ == SyncMode::batch) {
    // In the WAL: a process crash loses nothing from here on. The syncer
    // fsyncs it within sync_batch (power loss can take at most that window
    // of answered appends); a failed background sync fails every append.
    if (m.changed()) syncer_->note_write();
    ok = syncer_->healthy();
  }
  publish(m, ok);
  if (!ok) {
    out.assign(batch.size(), AppendOutcome{errc::store_unavailable});
    return out;
  }
  out.reserve(results.size());
  for (auto& r : results) out.emplace_back(std::move(r));
  return out;
}

void RocksDbInboxStore::register_device(std::string_view user, std::string_view device,
                                        std::uint64_t initial_cursor) {
  std::lock_guard lock(write_mu_);
  Mutation m(db_, next_dead_id_, {messages_cf_, dedup_cf_, collapse_cf_});
  if (Staged* st = stage(m, user, true)) {
    if (st->devices.try_emplace(std::string(device), initial_cursor).second) {
      m.put(cursors_cf_, layout::user_key(user, device), layout::be64(initial_cursor));
    }
  }
  commit(m, false);
  publish(m, true);
}

void RocksDbInboxStore::commit_cursors(std::span<const CursorUpdate> updates) {
  if (updates.empty()) return;
  std::lock_guard lock(write_mu_);
  Mutation m(db_, next_dead_id_, {messages_cf_, dedup_cf_, collapse_cf_});
  for (const auto& u : updates) {
    Staged* st = stage(m, u.user, true);
    if (st == nullptr) break;
    auto [it, inserted] = st->devices.try_emplace(u.device, u.cursor);
    if (!inserted) {
      if (u.cursor <= it->second) continue;  // a cursor never moves backwards (PROTOCOL.md 10)
      it->second = u.cursor;
    }
    m.put(cursors_cf_, layout::user_key(u.user, u.device), layout::be64(it->second));
  }
  commit(m, false);
  publish(m, true);
}

std::size_t RocksDbInboxStore::expire(std::int64_t now_ms, std::size_t budget) {
  if (budget == 0) return 0;
  std::lock_guard lock(write_mu_);
  Mutation m(db_, next_dead_id_, {messages_cf_, dedup_cf_, collapse_cf_});
  // Entries with expires_at <= now: the bound is the first key of now + 1.
  std::string end;
  rocksdb::Slice upper;
  rocksdb::ReadOptions ro;
  if (now_ms < std::numeric_limits<std::int64_t>::max()) {
    end = layout::expiry_time_key(now_ms + 1);
    upper = slice(end);
    ro.iterate_upper_bound = &upper;
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, expiry_cf_));
  std::size_t removed = 0;
  std::size_t tried = 0;  // seqs looked at, bounded too: entries may name messages already gone
  const std::size_t max_tries = budget + kExpireStaleScan;
  for (it->SeekToFirst(); it->Valid() && removed < budget && tried < max_tries && !m.failed; it->Next()) {
    const std::string_view key = view(it->key());
    m.del(expiry_cf_, key);
    const auto entry = layout::parse_expiry_key(key);
    ++tried;
    if (!entry) continue;
    const std::uint64_t last = layout::expiry_run_last(view(it->value()), entry->seq);
    Staged* u = stage(m, entry->user, false);
    if (u == nullptr) continue;
    std::uint64_t seq = entry->seq;
    for (; seq <= last && removed < budget && tried < max_tries && !m.failed; ++seq, ++tried) {
      if (remove_message(m, *u, seq, DeadReason::expired, now_ms)) ++removed;
    }
    if (seq <= last && !m.failed) {
      // Out of budget inside a run: the rest waits under its own key.
      m.put(expiry_cf_, layout::expiry_key(entry->expires_at_ms, entry->user, seq),
            layout::expiry_run_value(seq, last));
    }
  }
  if (!it->status().ok()) m.failed = true;
  if (!commit(m, false)) return 0;
  publish(m, true);
  return removed;
}

// ---- reads ----

std::vector<MessagePtr> RocksDbInboxStore::read_after(std::string_view user,
                                                      std::uint64_t after_seq, std::size_t limit,
                                                      std::int64_t now_ms) {
  std::vector<MessagePtr> out;
  if (limit == 0) return out;
  std::uint64_t visible = 0;
  std::uint64_t low = 0;
  {
    Shard& s = shard_of(user);
    std::lock_guard lock(s.mu);
    bool io_error = false;
    CachedInbox scratch;
    const CachedInbox* e = peek_locked(s, user, scratch, io_error, Devices::skip);
    if (e == nullptr) return out;
    visible = e->visible_head;
    low = e->meta.low_seq;
  }
  if (after_seq >= visible) return out;
  const std::string end = layout::message_key(user, visible + 1);
  const rocksdb::Slice upper = slice(end);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, messages_cf_));
  const std::size_t prefix_size = end.size() - 8;
  for (it->Seek(layout::message_key(user, std::max(after_seq + 1, low)));
       it->Valid() && out.size() < limit; it->Next()) {
    const std::uint64_t seq = layout::get_be64(view(it->key()).substr(prefix_size));
    auto rec = layout::decode_message(view(it->value()), seq);
    if (rec && rec->expires_at_ms > now_ms) {
      out.push_back(std::make_shared<const StoredMessage>(std::move(*rec)));
    }
  }
  return out;
}

MessagePtr RocksDbInboxStore::get(std::string_view user, std::uint64_t seq) {
  {
    Shard& s = shard_of(user);
    std::lock_guard lock(s.mu);
    bool io_error = false;
    CachedInbox scratch;
    const CachedInbox* e = peek_locked(s, user, scratch, io_error, Devices::skip);
    if (e == nullptr || seq == 0 || seq > e->visible_head) return nullptr;
  }
  std::string value;
  if (!db_->Get(rocksdb::ReadOptions(), messages_cf_, layout::message_key(user, seq), &value).ok()) {
    return nullptr;
  }
  auto rec = layout::decode_message(value, seq);
  return rec ? std::make_shared<const StoredMessage>(std::move(*rec)) : nullptr;
}

InboxState RocksDbInboxStore::state(std::string_view user) {
  Shard& s = shard_of(user);
  {
    std::lock_guard lock(s.mu);
    bool io_error = false;
    CachedInbox scratch;
    if (const CachedInbox* e = peek_locked(s, user, scratch, io_error, Devices::skip)) {
      return InboxState{e->meta.epoch, e->visible_head, e->meta.max_lost_seq};
    }
    if (io_error) return InboxState{};
  }
  // First use: make the epoch and write it, so that it is stable from the
  // first welcome on, across restarts too.
  std::lock_guard write_lock(write_mu_);
  Mutation m(db_, next_dead_id_, {messages_cf_, dedup_cf_, collapse_cf_});
  const Staged* st = stage(m, user, true);
  if (st == nullptr) return InboxState{};
  const InboxState fresh{st->meta.epoch, 0, 0};
  const bool ok = commit(m, false);
  publish(m, true);
  if (!ok) return fresh;
  std::lock_guard lock(s.mu);
  bool io_error = false;
  CachedInbox scratch;
  const CachedInbox* e = peek_locked(s, user, scratch, io_error, Devices::skip);
  return e ? InboxState{e->meta.epoch, e->visible_head, e->meta.max_lost_seq} : fresh;
}

std::optional<std::uint64_t> RocksDbInboxStore::cursor(std::string_view user,
                                                       std::string_view device) {
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  if (auto cached = s.inboxes.find(user); cached != s.inboxes.end()) {
    cached->second.used = true;
    auto it = cached->second.devices.find(device);
    if (it == cached->second.devices.end()) return std::nullopt;
    return it->second;
  }
  // Not cached: the device's own cursor key, not a scan of every device. It
  // is written in the same commit as its inbox's meta, never without it.
  std::string value;
  if (!db_->Get(rocksdb::ReadOptions(), cursors_cf_, layout::user_key(user, device), &value).ok() ||
      value.size() != 8) {
    return std::nullopt;
  }
  return layout::get_be64(value);
}

std::vector<DeviceCursor> RocksDbInboxStore::cursors(std::string_view user) {
  std::vector<DeviceCursor> out;
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  bool io_error = false;
  CachedInbox scratch;
  const CachedInbox* e = peek_locked(s, user, scratch, io_error, Devices::load);
  if (e == nullptr) return out;
  for (const auto& [device, cursor] : e->devices) out.push_back({device, cursor});
  return out;
}

std::vector<DeadLetter> RocksDbInboxStore::dead_letters(std::uint64_t after_id, std::size_t limit) {
  std::vector<DeadLetter> out;
  if (limit == 0 || after_id == std::numeric_limits<std::uint64_t>::max()) return out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), dead_cf_));
  for (it->Seek(layout::be64(after_id + 1)); it->Valid() && out.size() < limit; it->Next()) {
    if (it->key().size() != 8) continue;
    auto d = layout::decode_dead_letter(view(it->value()), layout::get_be64(view(it->key())));
    if (d) out.push_back(std::move(*d));
  }
  return out;
}

BacklogSlice RocksDbInboxStore::scan_backlog(std::string_view position, std::size_t max_users) {
  // Straight from disk (meta and cursors column families), so the census
  // does not pull cold inboxes into the inbox cache. Stored cursors lag acks
  // by the cursor batch: an over-count of at most that much.
  BacklogSlice out;
  std::unique_ptr<rocksdb::Iterator> meta(db_->NewIterator(rocksdb::ReadOptions(), meta_cf_));
  std::unique_ptr<rocksdb::Iterator> cur(db_->NewIterator(rocksdb::ReadOptions(), cursors_cf_));
  meta->Seek(slice(position));
  if (!position.empty() && meta->Valid() && view(meta->key()) == position) meta->Next();
  for (; meta->Valid() && out.users < std::max<std::size_t>(1, max_users); meta->Next()) {
    const auto m = layout::decode_meta(view(meta->value()));
    out.position.assign(meta->key().data(), meta->key().size());
    ++out.users;
    if (!m) continue;
    const std::string prefix = layout::user_prefix(out.position);
    std::optional<std::uint64_t> min_cursor;
    for (cur->Seek(slice(prefix)); cur->Valid() && cur->key().starts_with(slice(prefix)); cur->Next()) {
      if (cur->value().size() != 8) continue;
      const std::uint64_t c = layout::get_be64(view(cur->value()));
      min_cursor = min_cursor ? std::min(*min_cursor, c) : c;
    }
    const std::uint64_t b = inbox_backlog(m->count, m->head_seq, min_cursor);
    out.messages += b;
    if (b > 0) ++out.users_behind;
  }
  if (!meta->Valid()) out.position.clear();  // the pass is complete (or the read failed)
  return out;
}

std::uint64_t RocksDbInboxStore::dead_letter_count() { return dead_count_.load(); }

std::optional<DeadLetter> RocksDbInboxStore::dead_letter(std::string_view user, std::uint64_t seq) {
  std::string value;
  if (!db_->Get(rocksdb::ReadOptions(), dead_index_cf_, layout::message_key(user, seq), &value).ok() ||
      value.size() != 8) {
    return std::nullopt;
  }
  const std::uint64_t id = layout::get_be64(value);
  // The log may have dropped it since (the index entry waits for compaction).
  if (!db_->Get(rocksdb::ReadOptions(), dead_cf_, layout::be64(id), &value).ok()) return std::nullopt;
  auto d = layout::decode_dead_letter(value, id);
  if (!d || d->user != user || d->seq != seq) return std::nullopt;
  return d;
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
