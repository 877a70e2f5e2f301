#include "store/memory/memory_inbox_store.hpp"

#include <algorithm>
#include <charconv>
#include <functional>

#include "core/ids.hpp"

namespace herald::store {

MemoryInboxStore::MemoryInboxStore(StorePolicy policy, std::size_t max_dead_letters,
                                   std::size_t max_scheduled)
    : policy_(policy),
      epoch_(random_hex(8)),
      max_dead_letters_(max_dead_letters),
      max_scheduled_(max_scheduled) {}

MemoryInboxStore::Shard& MemoryInboxStore::shard_of(std::string_view user) {
  return shards_[std::hash<std::string_view>{}(user) % kShards];
}

MemoryInboxStore::Inbox& MemoryInboxStore::inbox_locked(Shard& s, std::string_view user) {
  auto it = s.inboxes.find(std::string(user));
  if (it == s.inboxes.end()) {
    it = s.inboxes.emplace(std::string(user), Inbox{}).first;
    it->second.epoch = epoch_;
  }
  return it->second;
}

std::vector<AppendOutcome> MemoryInboxStore::append(std::span<const NewMessage> batch,
                                                    std::int64_t now_ms) {
  std::vector<AppendOutcome> out;
  out.reserve(batch.size());
  for (const auto& m : batch) {
    // PROTOCOL.md 10: dedup covers scheduled messages.
    if (!m.id_generated && !m.from_schedule) {
      std::lock_guard lock(schedule_mu_);
      if (scheduled_keys_.count({m.user, m.id}) > 0) {
        out.emplace_back(AppendResult{0, m.id, true, true});
        continue;
      }
    }
    Shard& s = shard_of(m.user);
    std::lock_guard lock(s.mu);
    out.emplace_back(append_locked(s, m, now_ms));
  }
  return out;
}

AppendResult MemoryInboxStore::append_locked(Shard& s, const NewMessage& m, std::int64_t now_ms) {
  Inbox& inbox = inbox_locked(s, m.user);

  // Dedup window (PROTOCOL.md 7): prune what fell out of it, then look up.
  while (!inbox.dedup_order.empty() &&
         inbox.dedup_order.front().first + policy_.dedup_window_ms < now_ms) {
    auto it = inbox.dedup.find(inbox.dedup_order.front().second);
    if (it != inbox.dedup.end() && it->second.accepted_ms == inbox.dedup_order.front().first) {
      inbox.dedup.erase(it);
    }
    inbox.dedup_order.pop_front();
  }
  if (auto it = inbox.dedup.find(m.id); it != inbox.dedup.end()) {
    return AppendResult{it->second.seq, m.id, true};
  }

  auto msg = std::make_shared<StoredMessage>();
  msg->seq = ++inbox.head_seq;
  msg->id = m.id;
  msg->event = m.event;
  msg->data_json = m.data_json;
  msg->collapse_key = m.collapse_key;
  msg->trace_id = m.trace_id;
  msg->ts_ms = m.accepted_at_ms;
  msg->expires_at_ms = m.accepted_at_ms + (m.ttl_ms > 0 ? m.ttl_ms : policy_.retention_ttl_ms);
  const std::uint64_t seq = msg->seq;

  inbox.dedup[m.id] = DedupEntry{seq, now_ms};
  inbox.dedup_order.emplace_back(now_ms, m.id);

  // Collapse (PROTOCOL.md 1c): the older message with this key leaves, silently.
  if (!m.collapse_key.empty()) {
    auto [it, inserted] = inbox.collapse.try_emplace(m.collapse_key, seq);
    if (!inserted) {
      inbox.messages.erase(it->second);
      it->second = seq;
    }
  }
  s.expiry.push(ExpiryEntry{msg->expires_at_ms, m.user, seq});
  inbox.messages.emplace(seq, std::move(msg));

  // Retention cap (PROTOCOL.md 1b): oldest first.
  while (inbox.messages.size() > policy_.retention_max_messages) {
    remove_locked(inbox, m.user, inbox.messages.begin()->first, DeadReason::trimmed, now_ms);
  }
  return AppendResult{seq, m.id, false};
}

void MemoryInboxStore::remove_locked(Inbox& inbox, const std::string& user, std::uint64_t seq,
                                     DeadReason reason, std::int64_t now_ms) {
  auto it = inbox.messages.find(seq);
  if (it == inbox.messages.end()) return;
  MessagePtr msg = it->second;
  inbox.messages.erase(it);
  if (!msg->collapse_key.empty()) {
    auto c = inbox.collapse.find(msg->collapse_key);
    if (c != inbox.collapse.end() && c->second == seq) inbox.collapse.erase(c);
  }
  // Dead only if some device had not acked it (PROTOCOL.md 10); with no
  // device at all, nobody did.
  bool unacked = inbox.devices.empty();
  for (const auto& [device, cursor] : inbox.devices) {
    if (device_acked(user, device, cursor, seq)) continue;
    unacked = true;
    // A device without a mark yet is taken to have missed every earlier loss.
    auto mark = inbox.lost_marks.try_emplace(device, inbox.max_lost_seq).first;
    mark->second = std::max(mark->second, seq);
  }
  if (!unacked) return;
  inbox.max_lost_seq = std::max(inbox.max_lost_seq, seq);
  add_dead_letter(DeadLetter{0, user, seq, msg->id, msg->event, msg->data_json, reason, msg->ts_ms,
                             now_ms});
}

void MemoryInboxStore::add_dead_letter(DeadLetter d) {
  std::lock_guard lock(dead_mu_);
  d.id = next_dead_id_++;
  dead_.push_back(std::move(d));
  while (dead_.size() > max_dead_letters_) dead_.pop_front();
}

std::vector<MessagePtr> MemoryInboxStore::read_after(std::string_view user, std::uint64_t after_seq,
                                                     std::size_t limit, std::int64_t now_ms) {
  std::vector<MessagePtr> out;
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  auto in = s.inboxes.find(std::string(user));
  if (in == s.inboxes.end()) return out;
  for (auto it = in->second.messages.upper_bound(after_seq);
       it != in->second.messages.end() && out.size() < limit; ++it) {
    if (it->second->expires_at_ms > now_ms) out.push_back(it->second);
  }
  return out;
}

MessagePtr MemoryInboxStore::get(std::string_view user, std::uint64_t seq) {
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  auto in = s.inboxes.find(std::string(user));
  if (in == s.inboxes.end()) return nullptr;
  auto it = in->second.messages.find(seq);
  return it == in->second.messages.end() ? nullptr : it->second;
}

InboxState MemoryInboxStore::state(std::string_view user) {
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  auto in = s.inboxes.find(std::string(user));
  if (in == s.inboxes.end()) return InboxState{epoch_, 0, 0};
  return InboxState{in->second.epoch, in->second.head_seq, in->second.max_lost_seq};
}

std::optional<std::uint64_t> MemoryInboxStore::device_value(DeviceMap Inbox::*map, std::string_view user,
                                                            std::string_view device) {
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  auto in = s.inboxes.find(std::string(user));
  if (in == s.inboxes.end()) return std::nullopt;
  const DeviceMap& values = in->second.*map;
  auto it = values.find(device);
  if (it == values.end()) return std::nullopt;
  return it->second;
}

std::optional<std::uint64_t> MemoryInboxStore::cursor(std::string_view user,
                                                      std::string_view device) {
  return device_value(&Inbox::devices, user, device);
}

std::optional<std::uint64_t> MemoryInboxStore::lost_mark(std::string_view user,
                                                         std::string_view device) {
  return device_value(&Inbox::lost_marks, user, device);
}

std::vector<DeviceCursor> MemoryInboxStore::cursors(std::string_view user) {
  std::vector<DeviceCursor> out;
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  auto in = s.inboxes.find(std::string(user));
  if (in == s.inboxes.end()) return out;
  for (const auto& [device, cursor] : in->second.devices) out.push_back({device, cursor});
  return out;
}

void MemoryInboxStore::register_device(std::string_view user, std::string_view device,
                                       std::uint64_t initial_cursor) {
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  Inbox& inbox = inbox_locked(s, user);
  if (inbox.devices.try_emplace(std::string(device), initial_cursor).second) {
    inbox.lost_marks.try_emplace(std::string(device), inbox.max_lost_seq);
  }
}

void MemoryInboxStore::commit_cursors(std::span<const CursorUpdate> updates) {
  for (const auto& u : updates) {
    Shard& s = shard_of(u.user);
    std::lock_guard lock(s.mu);
    Inbox& inbox = inbox_locked(s, u.user);
    auto [it, inserted] = inbox.devices.try_emplace(u.device, u.cursor);
    if (!inserted) it->second = std::max(it->second, u.cursor);
  }
}

std::size_t MemoryInboxStore::expire(std::int64_t now_ms, std::size_t budget) {
  std::size_t removed = 0;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mu);
    while (removed < budget && !s.expiry.empty() && s.expiry.top().expires_at_ms <= now_ms) {
      ExpiryEntry e = s.expiry.top();
      s.expiry.pop();
      auto in = s.inboxes.find(e.user);
      if (in == s.inboxes.end()) continue;
      if (in->second.messages.count(e.seq) == 0) continue;  // collapsed or trimmed already
      remove_locked(in->second, e.user, e.seq, DeadReason::expired, now_ms);
      ++removed;
    }
    if (removed >= budget) break;
  }
  return removed;
}

std::vector<DeadLetter> MemoryInboxStore::dead_letters(std::uint64_t after_id, std::size_t limit) {
  std::vector<DeadLetter> out;
  std::lock_guard lock(dead_mu_);
  auto it = std::upper_bound(dead_.begin(), dead_.end(), after_id,
                             [](std::uint64_t id, const DeadLetter& d) { return id < d.id; });
  for (; it != dead_.end() && out.size() < limit; ++it) out.push_back(*it);
  return out;
}

std::optional<DeadLetter> MemoryInboxStore::dead_letter(std::string_view user, std::uint64_t seq) {
  std::lock_guard lock(dead_mu_);
  for (auto it = dead_.rbegin(); it != dead_.rend(); ++it) {
    if (it->seq == seq && it->user == user) return *it;
  }
  return std::nullopt;
}

std::uint64_t MemoryInboxStore::dead_letter_count() {
  std::lock_guard lock(dead_mu_);
  return next_dead_id_ - 1;
}

BacklogSlice MemoryInboxStore::scan_backlog(std::string_view position, std::size_t max_users) {
  // The position is the next shard's index: whole shards per slice, at
  // least one, until about max_users inboxes were counted.
  BacklogSlice out;
  std::size_t shard = 0;
  if (!position.empty()) {
    std::from_chars(position.data(), position.data() + position.size(), shard);
  }
  for (; shard < kShards && (out.users == 0 || out.users < max_users); ++shard) {
    Shard& s = shards_[shard];
    std::lock_guard lock(s.mu);
    for (const auto& [user, in] : s.inboxes) {
      std::optional<std::uint64_t> min_cursor;
      for (const auto& [device, c] : in.devices) min_cursor = min_cursor ? std::min(*min_cursor, c) : c;
      const std::uint64_t b = inbox_backlog(in.messages.size(), in.head_seq, min_cursor);
      out.messages += b;
      if (b > 0) ++out.users_behind;
    }
    out.users += s.inboxes.size();
  }
  if (shard < kShards) out.position = std::to_string(shard);
  return out;
}

// ---- schedule ----

bool MemoryInboxStore::appended_within_window(const std::string& user, const std::string& id,
                                              std::int64_t now_ms) {
  Shard& s = shard_of(user);
  std::lock_guard lock(s.mu);
  auto in = s.inboxes.find(user);
  if (in == s.inboxes.end()) return false;
  auto it = in->second.dedup.find(id);
  return it != in->second.dedup.end() &&
         it->second.accepted_ms + policy_.dedup_window_ms >= now_ms;
}

ScheduleResult MemoryInboxStore::schedule(const NewMessage& m, std::int64_t deliver_at_ms) {
  std::lock_guard lock(schedule_mu_);
  // PROTOCOL.md 10: dedup covers scheduled messages.
  if (scheduled_keys_.count({m.user, m.id}) > 0) return ScheduleResult::duplicate;
  if (appended_within_window(m.user, m.id, m.accepted_at_ms)) return ScheduleResult::duplicate;
  if (scheduled_.size() >= max_scheduled_) return ScheduleResult::full;
  const std::uint64_t id = next_schedule_id_++;
  scheduled_.emplace(id, ScheduledMessage{m, deliver_at_ms, id});
  schedule_order_.emplace(deliver_at_ms, id);
  scheduled_keys_.emplace(m.user, m.id);
  return ScheduleResult::scheduled;
}

std::vector<ScheduledMessage> MemoryInboxStore::due(std::int64_t now_ms, std::size_t limit) {
  std::vector<ScheduledMessage> out;
  std::lock_guard lock(schedule_mu_);
  for (auto it = schedule_order_.begin();
       it != schedule_order_.end() && it->first <= now_ms && out.size() < limit; ++it) {
    out.push_back(scheduled_.at(it->second));
  }
  return out;
}

void MemoryInboxStore::remove(std::span<const std::uint64_t> schedule_ids) {
  std::lock_guard lock(schedule_mu_);
  for (const std::uint64_t id : schedule_ids) {
    auto it = scheduled_.find(id);
    if (it == scheduled_.end()) continue;
    schedule_order_.erase({it->second.deliver_at_ms, id});
    scheduled_keys_.erase({it->second.message.user, it->second.message.id});
    scheduled_.erase(it);
  }
}

std::size_t MemoryInboxStore::scheduled_count() {
  std::lock_guard lock(schedule_mu_);
  return scheduled_.size();
}

}  // namespace herald::store
