#pragma once
// One Redis command on its way through RedisLink, and its reply.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct redisReply;

namespace herald::store {

// A Lua script, sent by EVALSHA and loaded (SCRIPT LOAD) on the node that
// answers NOSCRIPT: scripts survive no Redis restart, and loading them on
// every connection would cost a round trip each.
struct RedisScript {
  std::string source;
  std::string sha1;  // lowercase hex of the source, as Redis names it
  explicit RedisScript(std::string source);
};

struct RedisCommand {
  std::vector<std::string> args;     // the command and its arguments, binary-safe
  std::size_t key_arg = 0;           // index of the key that routes it in a cluster; 0: any node
  const RedisScript* script = nullptr;  // set for EVALSHA: what to load on NOSCRIPT

  // EVALSHA script numkeys keys... argv...; routed by the first key (a
  // script's keys must share one slot).
  static RedisCommand eval(const RedisScript& script, std::vector<std::string> keys,
                           std::vector<std::string> argv);
  // A plain command whose first argument after the name is its key.
  static RedisCommand keyed(std::vector<std::string> args);
};

struct RedisReplyDeleter {
  void operator()(redisReply* r) const;
};
// nullptr means no answer: the node was unreachable or the connection broke.
using RedisReply = std::unique_ptr<redisReply, RedisReplyDeleter>;

// Reading replies without touching hiredis' types at every call site.
bool reply_ok(const redisReply* r);                       // answered, and not an error
bool reply_is_array(const redisReply* r);
std::size_t reply_size(const redisReply* r);              // elements of an array, else 0
const redisReply* reply_at(const redisReply* r, std::size_t i);
std::optional<std::string> reply_string(const redisReply* r);  // a string or status; nullopt for nil
std::optional<std::int64_t> reply_int(const redisReply* r);    // an integer, or a string holding one
std::string reply_error(const redisReply* r);                  // the error text, or "no answer"

}  // namespace herald::store
