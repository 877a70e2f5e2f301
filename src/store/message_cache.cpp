#include "store/message_cache.hpp"

#include <algorithm>
#include <functional>

#include "core/clock.hpp"

namespace herald::store {

MessageCache::MessageCache(InboxStore& backend, StorePolicy policy, std::size_t max_bytes)
    : backend_(backend), policy_(policy), shard_budget_(std::max<std::size_t>(1, max_bytes / kShards)) {}

MessageCache::Shard& MessageCache::shard_of(std::string_view user) {
  return shards_[std::hash<std::string_view>{}(user) % kShards];
}

std::size_t MessageCache::cost(const StoredMessage& m) {
  return sizeof(StoredMessage) + m.id.size() + m.event.size() + m.data_json.size() +
         m.collapse_key.size() + m.trace_id.size() + 64;  // + shared_ptr control block, deque slot
}

std::vector<AppendOutcome> MessageCache::append(std::span<const NewMessage> batch, std::int64_t now_ms) {
  auto outcomes = backend_.append(batch, now_ms);
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const auto* r = std::get_if<AppendResult>(&outcomes[i]);
    if (r == nullptr || r->duplicate) continue;
    Shard& s = shard_of(batch[i].user);
    std::lock_guard lock(s.mu);
    add_locked(s, batch[i], r->seq);
  }
  return outcomes;
}

void MessageCache::add_locked(Shard& s, const NewMessage& m, std::uint64_t seq) {
  auto msg = std::make_shared<StoredMessage>();
  msg->seq = seq;
  msg->id = m.id;
  msg->event = m.event;
  msg->data_json = m.data_json;
  msg->collapse_key = m.collapse_key;
  msg->trace_id = m.trace_id;
  msg->ts_ms = m.accepted_at_ms;
  msg->expires_at_ms = m.accepted_at_ms + (m.ttl_ms > 0 ? m.ttl_ms : policy_.retention_ttl_ms);

  auto [it, fresh] = s.users.try_emplace(m.user);
  Entry& e = it->second;
  if (fresh) {
    // Older retained messages may exist on disk: complete only from here.
    e.complete_from = seq;
    s.lru.push_front(m.user);
    e.lru = s.lru.begin();
  } else {
    s.lru.splice(s.lru.begin(), s.lru, e.lru);
    if (!e.messages.empty() && e.messages.back()->seq >= seq) {
      // Out of order (should not happen with one writer): start over from here.
      while (!e.messages.empty()) pop_front_locked(s, e);
      e.complete_from = seq;
    }
  }
  if (!msg->collapse_key.empty()) {
    // The backend dropped the older message with this key (PROTOCOL.md 1c).
    for (auto m_it = e.messages.begin(); m_it != e.messages.end(); ++m_it) {
      if ((*m_it)->collapse_key == msg->collapse_key) {
        const std::size_t c = cost(**m_it);
        e.bytes -= c;
        s.bytes -= c;
        e.messages.erase(m_it);
        break;
      }
    }
  }
  const std::size_t c = cost(*msg);
  e.messages.push_back(std::move(msg));
  e.bytes += c;
  s.bytes += c;
  // Never more than the backend retains: what we hold cannot have been trimmed.
  while (e.messages.size() > policy_.retention_max_messages) pop_front_locked(s, e);
  evict_locked(s);
}

void MessageCache::pop_front_locked(Shard& s, Entry& e) {
  const std::size_t c = cost(*e.messages.front());
  e.complete_from = e.messages.front()->seq + 1;
  e.messages.pop_front();
  e.bytes -= c;
  s.bytes -= c;
}

void MessageCache::evict_locked(Shard& s) {
  while (s.bytes > shard_budget_ && !s.lru.empty()) {
    auto it = s.users.find(s.lru.back());
    Entry& e = it->second;
    // Trim the coldest user's oldest messages first; drop the entry when empty.
    while (!e.messages.empty() && s.bytes > shard_budget_) pop_front_locked(s, e);
    if (e.messages.empty()) {
      s.lru.pop_back();
      s.users.erase(it);
    } else {
      break;
    }
  }
}

std::vector<MessagePtr> MessageCache::read_after(std::string_view user, std::uint64_t after_seq,
                                                 std::size_t limit, std::int64_t now_ms) {
  {
    Shard& s = shard_of(user);
    std::lock_guard lock(s.mu);
    auto it = s.users.find(user);
    if (it != s.users.end() && after_seq + 1 >= it->second.complete_from) {
      Entry& e = it->second;
      s.lru.splice(s.lru.begin(), s.lru, e.lru);
      std::vector<MessagePtr> out;
      auto pos = std::upper_bound(e.messages.begin(), e.messages.end(), after_seq,
                                  [](std::uint64_t seq, const MessagePtr& m) { return seq < m->seq; });
      for (; pos != e.messages.end() && out.size() < limit; ++pos) {
        if ((*pos)->expires_at_ms > now_ms) out.push_back(*pos);
      }
      hits_.fetch_add(1, std::memory_order_relaxed);
      return out;
    }
  }
  misses_.fetch_add(1, std::memory_order_relaxed);
  return backend_.read_after(user, after_seq, limit, now_ms);
}

MessagePtr MessageCache::get(std::string_view user, std::uint64_t seq) {
  {
    Shard& s = shard_of(user);
    std::lock_guard lock(s.mu);
    auto it = s.users.find(user);
    if (it != s.users.end() && seq >= it->second.complete_from) {
      const auto& msgs = it->second.messages;
      auto pos = std::lower_bound(msgs.begin(), msgs.end(), seq,
                                  [](const MessagePtr& m, std::uint64_t v) { return m->seq < v; });
      // Past its TTL the backend decides: it holds the message until the
      // housekeeper removes it (maybe as a dead letter), and the cache is
      // not told of that removal.
      if (pos != msgs.end() && (*pos)->seq == seq && (*pos)->expires_at_ms > unix_ms_now()) return *pos;
    }
  }
  return backend_.get(user, seq);
}

MessageCacheStats MessageCache::stats() const {
  MessageCacheStats st;
  st.hits = hits_.load(std::memory_order_relaxed);
  st.misses = misses_.load(std::memory_order_relaxed);
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    st.bytes += s.bytes;
    st.users += s.users.size();
  }
  return st;
}

}  // namespace herald::store
