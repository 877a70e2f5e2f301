#include "store/redis/redis_scripts.hpp"

#include <string>

namespace herald::store::scripts {

namespace {

// Shared by the scripts over one user's keys. Numbers go back to Redis
// through n2s: Lua would print a large one in exponent notation.
constexpr const char* kUserPrelude = R"lua(
local meta, inbox, expiry, dedup, dedup_at, collapse, cursors, dead_out, acked, lost_marks =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local function n2s(x) return string.format('%d', x) end
local dead = {}

-- An inbox whose meta vanished (flushed, lost with a node) gets a new epoch,
-- and what is left of the old one goes: its seqs would collide with the new.
local function ensure_epoch(candidate)
  if redis.call('HEXISTS', meta, 'epoch') == 1 then return end
  redis.call('DEL', inbox, expiry, collapse, dedup, dedup_at, cursors, acked, lost_marks)
  redis.call('HSET', meta, 'epoch', candidate, 'head', '0', 'lost', '0')
end

-- The devices that had not acked seq; nil with no device at all: then
-- nobody acked anything (PROTOCOL.md 10). A device acked seq when its
-- cursor passed it or it acked seq above a gap.
local function not_acked_by(seq)
  local all = redis.call('HGETALL', cursors)
  if #all == 0 then return nil end
  local out = {}
  for i = 1, #all, 2 do
    if tonumber(all[i + 1]) < seq and not redis.call('ZSCORE', acked, all[i] .. '\n' .. n2s(seq)) then
      out[#out + 1] = all[i]
    end
  end
  return out
end

-- seq left before these devices acked it: their lost marks rise to it. A
-- device without a mark yet is taken to have missed every earlier loss.
local function raise_lost_marks(devices, seq)
  local before = tonumber(redis.call('HGET', meta, 'lost') or '0')
  for _, device in ipairs(devices) do
    local mark = tonumber(redis.call('HGET', lost_marks, device) or before)
    if seq > mark then mark = seq end
    redis.call('HSET', lost_marks, device, n2s(mark))
  end
end

-- Removes one retained message. reason nil: collapsed, silently (PROTOCOL.md
-- 1c); otherwise a dead letter unless every device had acked it.
local function remove(seq, reason, user, now)
  local sid = n2s(seq) .. '-0'
  redis.call('ZREM', expiry, n2s(seq))
  local found = redis.call('XRANGE', inbox, sid, sid)
  if #found == 0 then return false end
  local m = {}
  local f = found[1][2]
  for i = 1, #f, 2 do m[f[i]] = f[i + 1] end
  redis.call('XDEL', inbox, sid)
  if m.ck ~= '' and redis.call('HGET', collapse, m.ck) == n2s(seq) then
    redis.call('HDEL', collapse, m.ck)
  end
  local spared = reason == nil
  if not spared then
    local missed = not_acked_by(seq)
    spared = missed ~= nil and #missed == 0
    if missed then raise_lost_marks(missed, seq) end
  end
  redis.call('ZREMRANGEBYSCORE', acked, seq, seq)
  if spared then return true end
  if seq > tonumber(redis.call('HGET', meta, 'lost') or '0') then
    redis.call('HSET', meta, 'lost', n2s(seq))
  end
  local d = cjson.encode({u = user, s = n2s(seq), i = m.id, e = m.ev, d = m.d, r = reason,
                          t = m.ts, a = n2s(now)})
  redis.call('RPUSH', dead_out, d)
  dead[#dead + 1] = d
  return true
end

-- Dead letters a crashed Herald left in dead_out (made over 10 s ago, so no
-- caller is still moving them) go out again with this script's.
local function take_stale_dead(now)
  for _, d in ipairs(redis.call('LRANGE', dead_out, 0, 15)) do
    local ok, t = pcall(cjson.decode, d)
    if ok and tonumber(t.a) ~= nil and tonumber(t.a) < now - 10000 then dead[#dead + 1] = d end
  end
end

local function with_dead(out)
  for _, d in ipairs(dead) do out[#out + 1] = d end
  return out
end

local function earliest_expiry()
  local first = redis.call('ZRANGE', expiry, 0, 0, 'WITHSCORES')
  if #first == 0 then return nil end
  return tonumber(first[2])
end
)lua";

constexpr const char* kAppend = R"lua(
local user, now, window, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local id, ck, expires_at = ARGV[6], ARGV[9], ARGV[12]
ensure_epoch(ARGV[5])
take_stale_dead(now)

-- Dedup window (PROTOCOL.md 7): forget a bounded slice of what fell out.
local old = redis.call('ZRANGEBYSCORE', dedup_at, '-inf', '(' .. n2s(now - window), 'LIMIT', 0, 64)
if #old > 0 then
  redis.call('ZREM', dedup_at, unpack(old))
  redis.call('HDEL', dedup, unpack(old))
end
local prior = redis.call('HGET', dedup, id)
if prior then
  local sep = string.find(prior, ':', 1, true)
  if tonumber(string.sub(prior, sep + 1)) + window >= now then
    return with_dead({tonumber(string.sub(prior, 1, sep - 1)), 1, 0})
  end
end

local before = earliest_expiry()
local seq = redis.call('HINCRBY', meta, 'head', 1)
local s = n2s(seq)
redis.call('XADD', inbox, s .. '-0', 'id', id, 'ev', ARGV[7], 'd', ARGV[8], 'ck', ck,
           'tr', ARGV[10], 'ts', ARGV[11], 'ex', expires_at)
redis.call('HSET', dedup, id, s .. ':' .. n2s(now))
redis.call('ZADD', dedup_at, n2s(now), id)
redis.call('ZADD', expiry, expires_at, s)

-- Collapse (PROTOCOL.md 1c): the older message with this key leaves.
if ck ~= '' then
  local older = redis.call('HGET', collapse, ck)
  if older then remove(tonumber(older), nil, user, now) end
  redis.call('HSET', collapse, ck, s)
end

-- Retention cap (PROTOCOL.md 1b): oldest first.
while redis.call('XLEN', inbox) > cap do
  local first = redis.call('XRANGE', inbox, '-', '+', 'COUNT', 1)
  remove(tonumber(string.match(first[1][1], '^(%d+)')), 'trimmed', user, now)
end

local after = earliest_expiry()
local index_at = 0
if after ~= nil and (before == nil or after < before) then index_at = after end
return with_dead({seq, 0, index_at})
)lua";

constexpr const char* kExpire = R"lua(
local user, now, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
take_stale_dead(now)
local due = redis.call('ZRANGEBYSCORE', expiry, '-inf', n2s(now), 'LIMIT', 0, limit)
local removed = 0
for _, s in ipairs(due) do
  if remove(tonumber(s), 'expired', user, now) then removed = removed + 1 end
end
return with_dead({removed, earliest_expiry() or -1})
)lua";

constexpr const char* kState = R"lua(
ensure_epoch(ARGV[1])
return redis.call('HMGET', meta, 'epoch', 'head', 'lost')
)lua";

// A cursor is only written into an inbox with an epoch: otherwise the next
// append would take the cursors for those of a lost inbox and drop them.
constexpr const char* kRaiseCursors = R"lua(
ensure_epoch(ARGV[1])
local marks = redis.call('EXISTS', acked) == 1
for i = 2, #ARGV, 2 do
  local cur = redis.call('HGET', cursors, ARGV[i])
  if not cur or tonumber(ARGV[i + 1]) > tonumber(cur) then
    redis.call('HSET', cursors, ARGV[i], ARGV[i + 1])
    -- Acks above the old cursor that the new one passes say nothing more.
    if marks then
      local prefix = ARGV[i] .. '\n'
      for _, m in ipairs(redis.call('ZRANGEBYSCORE', acked, '-inf', ARGV[i + 1])) do
        if string.sub(m, 1, #prefix) == prefix then redis.call('ZREM', acked, m) end
      end
    end
  end
end
return 0
)lua";

// Acks above a gap (ARGV: device, seq pairs), kept for not_acked_by while
// the message is retained and the device's cursor is below it. Not for an
// inbox without an epoch (lost meanwhile: its seqs mean nothing now).
constexpr const char* kMarkAcked = R"lua(
if redis.call('HEXISTS', meta, 'epoch') == 0 then return 0 end
for i = 1, #ARGV, 2 do
  local cur = redis.call('HGET', cursors, ARGV[i])
  if cur and tonumber(ARGV[i + 1]) > tonumber(cur) and redis.call('ZSCORE', expiry, ARGV[i + 1]) then
    redis.call('ZADD', acked, ARGV[i + 1], ARGV[i] .. '\n' .. ARGV[i + 1])
  end
end
return 0
)lua";

constexpr const char* kRegisterDevice = R"lua(
ensure_epoch(ARGV[1])
if redis.call('HSETNX', cursors, ARGV[2], ARGV[3]) == 1 then
  -- What left before the device existed, it never acked.
  redis.call('HSET', lost_marks, ARGV[2], redis.call('HGET', meta, 'lost') or '0')
end
return 0
)lua";

constexpr const char* kAddDeadLetters = R"lua(
local id = 0
for i = 2, #ARGV do
  id = redis.call('INCR', KEYS[2])
  redis.call('XADD', KEYS[1], string.format('%d', id) .. '-0', 'j', ARGV[i])
  local ok, d = pcall(cjson.decode, ARGV[i])
  if ok and d.u and d.s then redis.call('ZADD', KEYS[3], id, d.u .. '\n' .. d.s) end
end
redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[1])
-- The index follows the log: ids the trim dropped leave it too.
local dropped = id - tonumber(ARGV[1])
if dropped > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', dropped) end
return 0
)lua";

constexpr const char* kScheduleKeys = R"lua(
local due, msgs, owners, taken, next_id = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
)lua";

constexpr const char* kScheduleAdd = R"lua(
if redis.call('HEXISTS', taken, ARGV[1]) == 1 then return {1, ''} end
if redis.call('HLEN', msgs) >= tonumber(ARGV[4]) then return {2, ''} end
-- Zero-padded: equal deliver_at scores then sort by id, the scheduling order.
local id = string.format('%020d', redis.call('INCR', next_id))
redis.call('HSET', msgs, id, ARGV[2])
redis.call('HSET', owners, id, ARGV[1])
redis.call('HSET', taken, ARGV[1], id)
redis.call('ZADD', due, ARGV[3], id)
return {0, id}
)lua";

constexpr const char* kScheduleDue = R"lua(
local ids = redis.call('ZRANGEBYSCORE', due, '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
local out = {redis.call('HLEN', msgs)}
for i = 1, #ids, 2 do
  out[#out + 1] = ids[i]
  out[#out + 1] = ids[i + 1]
  out[#out + 1] = redis.call('HGET', msgs, ids[i]) or ''
end
return out
)lua";

constexpr const char* kScheduleRemove = R"lua(
for i = 1, #ARGV do
  local key = redis.call('HGET', owners, ARGV[i])
  if key then
    redis.call('HDEL', taken, key)
    redis.call('HDEL', owners, ARGV[i])
    redis.call('HDEL', msgs, ARGV[i])
    redis.call('ZREM', due, ARGV[i])
  end
end
return 0
)lua";

}  // namespace

const RedisScript& append() {
  static const RedisScript s(std::string(kUserPrelude) + kAppend);
  return s;
}
const RedisScript& expire() {
  static const RedisScript s(std::string(kUserPrelude) + kExpire);
  return s;
}
const RedisScript& state() {
  static const RedisScript s(std::string(kUserPrelude) + kState);
  return s;
}
const RedisScript& raise_cursors() {
  static const RedisScript s(std::string(kUserPrelude) + kRaiseCursors);
  return s;
}
const RedisScript& mark_acked() {
  static const RedisScript s(std::string(kUserPrelude) + kMarkAcked);
  return s;
}
const RedisScript& register_device() {
  static const RedisScript s(std::string(kUserPrelude) + kRegisterDevice);
  return s;
}
const RedisScript& add_dead_letters() {
  static const RedisScript s(kAddDeadLetters);
  return s;
}
const RedisScript& schedule_add() {
  static const RedisScript s(std::string(kScheduleKeys) + kScheduleAdd);
  return s;
}
const RedisScript& schedule_due() {
  static const RedisScript s(std::string(kScheduleKeys) + kScheduleDue);
  return s;
}
const RedisScript& schedule_remove() {
  static const RedisScript s(std::string(kScheduleKeys) + kScheduleRemove);
  return s;
}

}  // namespace herald::store::scripts
