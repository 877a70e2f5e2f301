// RocksDbInboxStore's reads: the delivery path's inbox reads, inbox state
// and cursors, dead letters and the backlog census. Readers take a shard
// mutex for the cached state only, then read RocksDB without locks.
#include <algorithm>
#include <limits>

#include "store/rocksdb/rocksdb_inbox_state.hpp"

namespace herald::store {

using rocks::slice;
using rocks::view;

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

std::optional<std::uint64_t> RocksDbInboxStore::lost_mark(std::string_view user,
                                                          std::string_view device) {
  std::string value;
  if (!db_->Get(rocksdb::ReadOptions(), lost_marks_cf_, layout::user_key(user, device), &value).ok() ||
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

}  // namespace herald::store
