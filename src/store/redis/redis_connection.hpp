#pragma once
// One synchronous hiredis connection to one Redis node.
//
// Owns the redisContext. Used by one thread at a time (RedisLink hands
// connections out of its pool); once broken() it is never used again.
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "store/redis/redis_command.hpp"
#include "store/redis/redis_endpoints.hpp"
#include "store/redis/slot_map.hpp"

struct redisContext;

namespace herald::store {

class RedisConnection {
 public:
  // nullptr when the node cannot be reached within connect_timeout, or
  // refuses the credentials (AUTH, sent when a password is set); `error`,
  // when given, then says which.
  static std::unique_ptr<RedisConnection> open(const NodeAddress& node, const RedisCredentials& credentials,
                                               std::chrono::milliseconds connect_timeout,
                                               std::chrono::milliseconds command_timeout,
                                               std::string* error = nullptr);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Writes every command, then reads every reply: one round trip for all.
  // nullopt when the connection broke (timeout, reset): then some of the
  // commands may have run and others not, and the connection is broken().
  std::optional<std::vector<RedisReply>> pipeline(std::span<const std::vector<std::string>* const> commands);
  std::optional<RedisReply> call(const std::vector<std::string>& command);

  // For a subscriber: writes one command without waiting for its reply.
  bool send(const std::vector<std::string>& command);
  // The next reply, waiting at most `wait` for it: a null RedisReply when
  // none came in time, nullopt when the connection broke.
  std::optional<RedisReply> receive(std::chrono::milliseconds wait);

  bool broken() const { return broken_; }
  const NodeAddress& node() const { return node_; }

 private:
  RedisConnection(redisContext* ctx, NodeAddress node) : ctx_(ctx), node_(std::move(node)) {}

  redisContext* ctx_;  // owned
  NodeAddress node_;
  bool broken_ = false;
};

}  // namespace herald::store
