// RocksDbInboxStore's writes: appends (dedup, collapse, retention, the
// expiry index), device registration, cursor batches and expiry. Each
// mutation is one WriteBatch, applied to the inbox cache only once written
// (rocksdb_inbox_state.hpp).
#include <algorithm>
#include <limits>
#include <optional>

#include "core/ids.hpp"
#include "store/rocksdb/rocksdb_inbox_state.hpp"
#include "store/rocksdb/wal_syncer.hpp"

namespace herald::store {

using rocks::slice;
using rocks::view;

namespace {

// Expiry-index entries of messages already gone that one expire() call may
// drop beyond its budget, so a call stays bounded.
constexpr std::size_t kExpireStaleScan = 4096;
// How far apart the expiry times of one expiry entry's messages may be (see
// add_expiry()).
constexpr std::int64_t kExpiryRunSpreadMs = 1000;

}  // namespace

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
    if (device_acked(u.user, device, cursor, seq)) continue;
    unacked = true;
    raise_lost_mark(m, u, device, seq);
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

void RocksDbInboxStore::raise_lost_mark(Mutation& m, Staged& u, const std::string& device,
                                        std::uint64_t seq) {
  const std::string key = layout::user_key(u.user, device);
  auto it = u.lost_marks.find(device);
  if (it == u.lost_marks.end()) {
    // A device without a mark yet is taken to have missed every earlier loss.
    std::uint64_t mark = u.meta.max_lost_seq;
    std::string value;
    if (m.get(lost_marks_cf_, key, &value) && value.size() == 8) mark = layout::get_be64(value);
    it = u.lost_marks.emplace(device, mark).first;
  }
  it->second = std::max(it->second, seq);
  m.put(lost_marks_cf_, key, layout::be64(it->second));
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
      // What left before the device existed, it never acked.
      m.put(lost_marks_cf_, layout::user_key(user, device), layout::be64(st->meta.max_lost_seq));
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

}  // namespace herald::store
