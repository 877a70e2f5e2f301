#pragma once
// Private to the RocksDB store's own .cpp files (rocksdb_inbox_store.cpp:
// open, close and the inbox cache; rocksdb_inbox_mutations.cpp: appends
// and the other writes; rocksdb_inbox_reads.cpp: reads and inspection;
// rocksdb_schedule.cpp): the state they share, which the public header
// only names.
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <array>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/container/flat_map.hpp>

#include "core/string_map.hpp"
#include "store/rocksdb/inbox_layout.hpp"
#include "store/rocksdb/rocksdb_inbox_store.hpp"

namespace herald::store {

namespace rocks {

inline rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

// device -> cursor. A sorted vector: a user has a few devices, and each
// cached inbox pays for the container (24 bytes, one block for all devices,
// against 48 and an 80-byte node per device for a std::map).
using DeviceMap = boost::container::flat_map<std::string, std::uint64_t, std::less<>>;

}  // namespace rocks

// ---- cache and mutation state ----

struct RocksDbInboxStore::CachedInbox {
  layout::UserMeta meta;           // as last written
  rocks::DeviceMap devices;        // device -> cursor, as last written
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
  layout::UserMeta meta;
  rocks::DeviceMap devices;
  // Lost marks read or raised by this mutation (a trim or expiry of several
  // seqs raises one device's mark more than once).
  rocks::DeviceMap lost_marks;
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
    const auto s = db_->Get(rocksdb::ReadOptions(), cf, rocks::slice(key), value);
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
      if (w->value) batch_.Put(w->cf, rocks::slice(w->key), rocks::slice(*w->value));
      else batch_.Delete(w->cf, rocks::slice(w->key));
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

}  // namespace herald::store
