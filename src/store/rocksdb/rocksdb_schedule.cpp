// The ScheduleStore half of RocksDbInboxStore: the schedule of delayed
// messages in its three column families (store/rocksdb/inbox_layout.hpp).
// Every change is one WriteBatch that also carries the next schedule id and
// the scheduled count, so the three families and both counters move together.
#include "store/rocksdb/rocksdb_inbox_store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <limits>

#include "store/rocksdb/inbox_layout.hpp"
#include "store/rocksdb/rocksdb_inbox_state.hpp"
#include "store/rocksdb/wal_syncer.hpp"

namespace herald::store {

using rocks::slice;
using rocks::view;

ScheduleResult RocksDbInboxStore::schedule(const NewMessage& m, std::int64_t deliver_at_ms) {
  // The dedup family and the schedule index share the key (user, id).
  const std::string key = layout::user_key(m.user, m.id);
  std::unique_lock lock(schedule_mu_);
  std::string value;

  // PROTOCOL.md 10: dedup covers scheduled messages.
  auto s = db_->Get(rocksdb::ReadOptions(), schedule_keys_cf_, slice(key), &value);
  if (s.ok()) return ScheduleResult::duplicate;
  if (!s.IsNotFound()) return ScheduleResult::unavailable;
  // ... and messages already appended within the window (PROTOCOL.md 7).
  s = db_->Get(rocksdb::ReadOptions(), dedup_cf_, slice(key), &value);
  if (s.ok()) {
    const auto d = layout::decode_dedup(value);
    if (d && d->accepted_ms + policy_.dedup_window_ms >= m.accepted_at_ms) {
      return ScheduleResult::duplicate;
    }
  } else if (!s.IsNotFound()) {
    return ScheduleResult::unavailable;
  }
  const std::uint64_t count = scheduled_count_.load();
  if (count >= max_scheduled_) return ScheduleResult::full;

  const std::uint64_t id = next_schedule_id_;
  rocksdb::WriteBatch batch;
  batch.Put(schedule_cf_, layout::schedule_key(deliver_at_ms, id), layout::encode_scheduled(m));
  batch.Put(schedule_ids_cf_, layout::be64(id),
            layout::encode_schedule_ref({deliver_at_ms, m.user, m.id}));
  batch.Put(schedule_keys_cf_, slice(key), layout::be64(id));
  batch.Put(default_cf_, slice(layout::kNextScheduleIdKey), layout::be64(id + 1));
  batch.Put(default_cf_, slice(layout::kScheduledCountKey), layout::be64(count + 1));
  rocksdb::WriteOptions wo;
  wo.sync = sync_ == SyncMode::always;
  const bool ok = db_->Write(wo, &batch).ok();
  write_ok_.store(ok);
  if (!ok) return ScheduleResult::unavailable;
  next_schedule_id_ = id + 1;
  scheduled_count_.store(count + 1);
  if (sync_ == SyncMode::batch) {
    const std::uint64_t generation = syncer_->note_write();
    lock.unlock();
    // Written but not synced: unavailable, like an append whose sync failed
    // (the message may still come due; a retry answers duplicate).
    if (!syncer_->wait_synced(generation)) return ScheduleResult::unavailable;
  }
  return ScheduleResult::scheduled;
}

std::vector<ScheduledMessage> RocksDbInboxStore::due(std::int64_t now_ms, std::size_t limit) {
  std::vector<ScheduledMessage> out;
  if (limit == 0) return out;
  // Entries with deliver_at <= now: the bound is the first key of now + 1.
  std::string end;
  rocksdb::Slice upper;
  rocksdb::ReadOptions ro;
  if (now_ms < std::numeric_limits<std::int64_t>::max()) {
    end = layout::schedule_key(now_ms + 1, 0);
    upper = slice(end);
    ro.iterate_upper_bound = &upper;
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, schedule_cf_));
  for (it->SeekToFirst(); it->Valid() && out.size() < limit; it->Next()) {
    const auto key = layout::parse_schedule_key(view(it->key()));
    auto message = layout::decode_scheduled(view(it->value()));
    if (!key || !message) continue;
    out.push_back(ScheduledMessage{std::move(*message), key->deliver_at_ms, key->schedule_id});
  }
  return out;
}

void RocksDbInboxStore::remove(std::span<const std::uint64_t> schedule_ids) {
  if (schedule_ids.empty()) return;
  std::vector<std::uint64_t> ids(schedule_ids.begin(), schedule_ids.end());
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());

  std::lock_guard lock(schedule_mu_);
  rocksdb::WriteBatch batch;
  std::uint64_t removed = 0;
  std::string value;
  for (const std::uint64_t id : ids) {
    const std::string id_key = layout::be64(id);
    auto s = db_->Get(rocksdb::ReadOptions(), schedule_ids_cf_, slice(id_key), &value);
    if (s.IsNotFound()) continue;
    if (!s.ok()) return;  // nothing removed; the caller's next pass tries again
    const auto ref = layout::decode_schedule_ref(value);
    batch.Delete(schedule_ids_cf_, slice(id_key));
    ++removed;
    if (!ref) continue;  // unreadable: its other keys cannot be found
    batch.Delete(schedule_cf_, layout::schedule_key(ref->deliver_at_ms, id));
    const std::string key = layout::user_key(ref->user, ref->id);
    s = db_->Get(rocksdb::ReadOptions(), schedule_keys_cf_, slice(key), &value);
    if (s.ok() && value.size() == 8 && layout::get_be64(value) == id) {
      batch.Delete(schedule_keys_cf_, slice(key));
    }
  }
  if (removed == 0) return;
  const std::uint64_t count = scheduled_count_.load();
  const std::uint64_t left = count - std::min(count, removed);
  batch.Put(default_cf_, slice(layout::kScheduledCountKey), layout::be64(left));
  const bool ok = db_->Write(rocksdb::WriteOptions(), &batch).ok();
  write_ok_.store(ok);
  if (ok) scheduled_count_.store(left);
}

std::size_t RocksDbInboxStore::scheduled_count() {
  return static_cast<std::size_t>(scheduled_count_.load());
}

}  // namespace herald::store
