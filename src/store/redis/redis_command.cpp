#include "store/redis/redis_command.hpp"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <charconv>

namespace herald::store {

RedisScript::RedisScript(std::string src) : source(std::move(src)) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(source.data()), source.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  sha1.reserve(2 * SHA_DIGEST_LENGTH);
  for (const unsigned char b : digest) {
    sha1.push_back(kHex[b >> 4]);
    sha1.push_back(kHex[b & 0xf]);
  }
}

RedisCommand RedisCommand::eval(const RedisScript& script, std::vector<std::string> keys,
                                std::vector<std::string> argv) {
  RedisCommand c;
  c.args.reserve(3 + keys.size() + argv.size());
  c.args.push_back("EVALSHA");
  c.args.push_back(script.sha1);
  c.args.push_back(std::to_string(keys.size()));
  for (auto& k : keys) c.args.push_back(std::move(k));
  for (auto& a : argv) c.args.push_back(std::move(a));
  c.key_arg = keys.empty() ? 0 : 3;
  c.script = &script;
  return c;
}

RedisCommand RedisCommand::keyed(std::vector<std::string> args) {
  RedisCommand c;
  c.args = std::move(args);
  c.key_arg = c.args.size() > 1 ? 1 : 0;
  return c;
}

void RedisReplyDeleter::operator()(redisReply* r) const {
  if (r != nullptr) freeReplyObject(r);
}

bool reply_ok(const redisReply* r) { return r != nullptr && r->type != REDIS_REPLY_ERROR; }

bool reply_is_array(const redisReply* r) { return r != nullptr && r->type == REDIS_REPLY_ARRAY; }

std::size_t reply_size(const redisReply* r) { return reply_is_array(r) ? r->elements : 0; }

const redisReply* reply_at(const redisReply* r, std::size_t i) {
  return i < reply_size(r) ? r->element[i] : nullptr;
}

std::optional<std::string> reply_string(const redisReply* r) {
  if (r == nullptr || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) {
    return std::nullopt;
  }
  return std::string(r->str, r->len);
}

std::optional<std::int64_t> reply_int(const redisReply* r) {
  if (r == nullptr) return std::nullopt;
  if (r->type == REDIS_REPLY_INTEGER) return r->integer;
  if (r->type != REDIS_REPLY_STRING) return std::nullopt;
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(r->str, r->str + r->len, v);
  if (ec != std::errc{} || p != r->str + r->len) return std::nullopt;
  return v;
}

std::string reply_error(const redisReply* r) {
  if (r == nullptr) return "no answer";
  if (r->type == REDIS_REPLY_ERROR) return std::string(r->str, r->len);
  return "unexpected reply type " + std::to_string(r->type);
}

}  // namespace herald::store
