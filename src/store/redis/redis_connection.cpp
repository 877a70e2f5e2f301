#include "store/redis/redis_connection.hpp"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/time.h>

#include "store/redis/redis_endpoints.hpp"

namespace herald::store {

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

}  // namespace

std::unique_ptr<RedisConnection> RedisConnection::open(const NodeAddress& node, const RedisCredentials& credentials,
                                                       std::chrono::milliseconds connect_timeout,
                                                       std::chrono::milliseconds command_timeout,
                                                       std::string* error) {
  const auto fail = [error](redisContext* ctx, std::string why) -> std::unique_ptr<RedisConnection> {
    if (error != nullptr) *error = std::move(why);
    if (ctx != nullptr) redisFree(ctx);
    return nullptr;
  };
  const auto [host, port] = split_address(node);
  redisContext* ctx = redisConnectWithTimeout(host.c_str(), port, to_timeval(connect_timeout));
  if (ctx == nullptr) return fail(nullptr, "out of memory");
  if (ctx->err != 0) return fail(ctx, ctx->errstr);
  if (redisSetTimeout(ctx, to_timeval(command_timeout)) != REDIS_OK) return fail(ctx, "cannot set the timeout");
  auto conn = std::unique_ptr<RedisConnection>(new RedisConnection(ctx, node));
  if (!credentials.password.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!credentials.username.empty()) auth.push_back(credentials.username);
    auth.push_back(credentials.password);
    const std::vector<std::string>* commands[] = {&auth};
    const auto replies = conn->pipeline(commands);
    if (!replies) return fail(nullptr, "no answer to AUTH");  // conn frees the context
    const redisReply* reply = replies->front().get();
    // Redis' answer (WRONGPASS..., or "AUTH <password> called without any
    // password configured") names no secret.
    if (reply->type == REDIS_REPLY_ERROR) return fail(nullptr, "AUTH refused: " + std::string(reply->str, reply->len));
  }
  return conn;
}

RedisConnection::~RedisConnection() { redisFree(ctx_); }

std::optional<std::vector<RedisReply>> RedisConnection::pipeline(
    std::span<const std::vector<std::string>* const> commands) {
  if (broken_) return std::nullopt;
  std::vector<const char*> argv;
  std::vector<std::size_t> argvlen;
  for (const auto* command : commands) {
    argv.clear();
    argvlen.clear();
    for (const auto& a : *command) {
      argv.push_back(a.data());
      argvlen.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), argvlen.data()) !=
        REDIS_OK) {
      broken_ = true;
      return std::nullopt;
    }
  }
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    void* reply = nullptr;
    if (redisGetReply(ctx_, &reply) != REDIS_OK || reply == nullptr) {
      broken_ = true;
      return std::nullopt;
    }
    replies.emplace_back(static_cast<redisReply*>(reply));
  }
  return replies;
}

bool RedisConnection::send(const std::vector<std::string>& command) {
  if (broken_) return false;
  std::vector<const char*> argv;
  std::vector<std::size_t> argvlen;
  for (const auto& a : command) {
    argv.push_back(a.data());
    argvlen.push_back(a.size());
  }
  int done = 0;
  if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), argvlen.data()) != REDIS_OK) {
    broken_ = true;
    return false;
  }
  while (done == 0) {
    if (redisBufferWrite(ctx_, &done) != REDIS_OK) {
      broken_ = true;
      return false;
    }
  }
  return true;
}

std::optional<RedisReply> RedisConnection::receive(std::chrono::milliseconds wait) {
  if (broken_) return std::nullopt;
  void* reply = nullptr;
  if (redisGetReplyFromReader(ctx_, &reply) != REDIS_OK) {
    broken_ = true;
    return std::nullopt;
  }
  if (reply != nullptr) return RedisReply(static_cast<redisReply*>(reply));
  pollfd pfd{ctx_->fd, POLLIN, 0};
  const int ready = ::poll(&pfd, 1, static_cast<int>(wait.count()));
  if (ready == 0) return RedisReply(nullptr);
  if (ready < 0 || redisBufferRead(ctx_) != REDIS_OK ||
      redisGetReplyFromReader(ctx_, &reply) != REDIS_OK) {
    broken_ = true;
    return std::nullopt;
  }
  return RedisReply(static_cast<redisReply*>(reply));
}

std::optional<RedisReply> RedisConnection::call(const std::vector<std::string>& command) {
  const std::vector<std::string>* one[] = {&command};
  auto replies = pipeline(one);
  if (!replies) return std::nullopt;
  return std::move(replies->front());
}

}  // namespace herald::store
