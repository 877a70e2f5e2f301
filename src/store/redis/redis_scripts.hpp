#pragma once
// The Lua scripts of the redis store. Each runs atomically on the node that
// holds its keys (Redis runs one script at a time), so one script is one
// indivisible step of an inbox: what InboxStore promises "per item atomic".
// Their text and what they do: redis_scripts.cpp and docs/cluster.md.
#include "store/redis/redis_command.hpp"

namespace herald::store::scripts {

// KEYS: the user's keys (UserKey order). ARGV: user, now, dedup window,
// retention cap, epoch candidate, id, event, data, collapse key, trace id,
// ts, expires at. Returns {seq, duplicate 0/1, index_at, dead letter JSON...}:
// index_at > 0 when the user's earliest expiry went down and the global
// expiry index must hear of it. The dead letters include those a crashed
// caller left in dead_out (append and expire both pick them up).
const RedisScript& append();

// KEYS: the user's keys. ARGV: user, now, limit. Removes up to limit expired
// messages. Returns {removed, earliest expiry left or -1, dead letter JSON...}.
const RedisScript& expire();

// KEYS: the user's keys. ARGV: epoch candidate. Returns {epoch, head, lost},
// creating the epoch on first use.
const RedisScript& state();

// KEYS: the user's keys. ARGV: epoch candidate, device, cursor, device,
// cursor... Raises only (dropping the device's ack marks the new cursor
// passes); creates the epoch first.
const RedisScript& raise_cursors();
// KEYS: the user's keys. ARGV: device, seq, device, seq... Acks above the
// device's cursor of retained messages; nothing for an inbox without epoch.
const RedisScript& mark_acked();
// KEYS: the user's keys. ARGV: epoch candidate, device, initial cursor.
// Keeps a known device's cursor; creates the epoch first.
const RedisScript& register_device();

// KEYS: dead log, dead next. ARGV: max length, dead letter JSON... Appends
// each with the next id, then trims the log to max length, oldest first.
const RedisScript& add_dead_letters();

// KEYS: schedule keys (RedisKeys::schedule order). ARGV: dedup key, message
// JSON, deliver at, max scheduled. Returns {0 scheduled | 1 duplicate | 2 full, id}.
const RedisScript& schedule_add();
// Same KEYS. ARGV: now, limit. Returns {id, deliver_at, JSON, ...}.
const RedisScript& schedule_due();
// Same KEYS. ARGV: ids. Drops them and their dedup keys.
const RedisScript& schedule_remove();

}  // namespace herald::store::scripts
