#include "store/redis/redis_keys.hpp"

#include <stdexcept>

#include "store/redis/slot_map.hpp"

namespace herald::store {

namespace {

constexpr std::array<const char*, kUserKeys> kSuffix = {
    ":meta", ":inbox", ":expiry", ":dedup", ":dedup_at", ":collapse", ":cursors", ":dead_out",
    ":acked", ":lost_marks"};

// '{', '}' and '%' escaped, so that the tag ends where the user ends and two
// users never share a key name.
std::string escape(std::string_view user) {
  std::string out;
  out.reserve(user.size());
  for (const char c : user) {
    if (c == '%') out += "%25";
    else if (c == '{') out += "%7B";
    else if (c == '}') out += "%7D";
    else out += c;
  }
  return out;
}

}  // namespace

RedisKeys::RedisKeys(std::string prefix) : prefix_(std::move(prefix)) {
  if (prefix_.find_first_of("{}") != std::string::npos) {
    throw std::invalid_argument("redis key prefix must not contain '{' or '}': " + prefix_);
  }
}

std::string RedisKeys::tag(std::string_view user) const { return prefix_ + "{u:" + escape(user) + "}"; }

std::string RedisKeys::user(std::string_view user, UserKey key) const {
  return tag(user) + kSuffix[static_cast<std::size_t>(key)];
}

std::array<std::string, kUserKeys> RedisKeys::user_all(std::string_view user) const {
  const std::string t = tag(user);
  std::array<std::string, kUserKeys> out;
  for (std::size_t i = 0; i < kUserKeys; ++i) out[i] = t + kSuffix[i];
  return out;
}

std::string RedisKeys::expiry_bucket(std::size_t bucket) const {
  return prefix_ + "{x:" + std::to_string(bucket) + "}:expiry";
}

std::size_t RedisKeys::bucket_of(std::string_view user) const {
  return key_slot(tag(user)) % kExpiryBuckets;
}

std::string RedisKeys::schedule_member(std::string_view user, std::string_view id) {
  std::string out = std::to_string(user.size());
  out += ':';
  out += user;
  out += id;
  return out;
}

std::array<std::string, 5> RedisKeys::schedule() const {
  const std::string t = prefix_ + "{sched}";
  return {t + ":due", t + ":msgs", t + ":owners", t + ":taken", t + ":next"};
}

}  // namespace herald::store
