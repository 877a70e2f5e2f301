#include "redis_process.hpp"

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "core/ids.hpp"

namespace herald::testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

bool bindable(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// A free loopback port whose cluster bus port (+10000) is free too, below
// the ephemeral range so that the kernel does not hand it out meanwhile.
int free_port() {
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int port = 20000 + static_cast<int>(std::stoul(random_hex(2), nullptr, 16) % 12000);
    if (bindable(port) && bindable(port + 10000)) return port;
  }
  throw std::runtime_error("no free loopback port");
}

std::string tail_of(const std::string& path) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > 600 ? text.substr(text.size() - 600) : text;
}

pid_t spawn_process(const std::vector<std::string>& argv, const std::string& log) {
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // Dies with the test process, whatever happens to it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    if (!log.empty()) {
      FILE* f = std::freopen(log.c_str(), "a", stdout);
      (void)f;
      ::dup2(STDOUT_FILENO, STDERR_FILENO);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

redisReply* run(int port, const std::vector<std::string>& args) {
  timeval tv{5, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c == nullptr || c->err != 0) {
    if (c != nullptr) redisFree(c);
    throw std::runtime_error("cannot connect to redis on port " + std::to_string(port));
  }
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  redisFree(c);
  if (r == nullptr) throw std::runtime_error("redis " + args.front() + ": no answer");
  if (r->type == REDIS_REPLY_ERROR) {
    const std::string error(r->str, r->len);
    freeReplyObject(r);
    throw std::runtime_error("redis " + args.front() + " failed: " + error);
  }
  return r;
}

}  // namespace

std::string redis_command(int port, const std::vector<std::string>& args) {
  redisReply* r = run(port, args);
  std::string out;
  if (r->type == REDIS_REPLY_INTEGER) out = std::to_string(r->integer);
  else if (r->str != nullptr) out.assign(r->str, r->len);
  freeReplyObject(r);
  return out;
}

std::vector<std::string> redis_command_list(int port, const std::vector<std::string>& args) {
  redisReply* r = run(port, args);
  std::vector<std::string> out;
  for (std::size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; ++i) {
    if (r->element[i]->str != nullptr) out.emplace_back(r->element[i]->str, r->element[i]->len);
  }
  freeReplyObject(r);
  return out;
}

RedisProcess::RedisProcess(std::vector<std::string> extra_args) : extra_args_(std::move(extra_args)) {
  if (::access(kRedisServer, X_OK) != 0) {
    throw std::runtime_error(std::string(kRedisServer) + " is missing: run scripts/setup.sh");
  }
  dir_ = (fs::temp_directory_path() / ("herald-redis-" + random_hex(6))).string();
  fs::create_directories(dir_);
  port_ = free_port();
  try {
    spawn();
  } catch (...) {
    std::error_code ec;
    fs::remove_all(dir_, ec);  // no destructor runs for a constructor that throws
    throw;
  }
}

RedisProcess::~RedisProcess() {
  stop();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void RedisProcess::spawn() {
  std::vector<std::string> argv = {kRedisServer, "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                   "--dir", dir_, "--save", "", "--daemonize", "no",
                                   "--protected-mode", "yes"};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  pid_ = spawn_process(argv, dir_ + "/redis.log");
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      if (redis_command(port_, {"PING"}) == "PONG") return;
    } catch (const std::exception&) {
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("redis-server exited at start: " + tail_of(dir_ + "/redis.log"));
    }
    std::this_thread::sleep_for(10ms);
  }
  stop();
  throw std::runtime_error("redis-server did not answer PING within 10 s");
}

void RedisProcess::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

void RedisProcess::restart() {
  stop();
  spawn();
}

RedisCluster::RedisCluster() {
  for (int i = 0; i < 3; ++i) {
    nodes_.push_back(std::make_unique<RedisProcess>(std::vector<std::string>{
        "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"}));
  }
  std::vector<std::string> argv = {kRedisCli, "--cluster", "create"};
  for (const auto& n : nodes_) argv.push_back(n->address());
  argv.insert(argv.end(), {"--cluster-replicas", "0", "--cluster-yes"});
  const pid_t pid = spawn_process(argv, nodes_.front()->dir() + "/cluster-create.log");
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("redis-cli --cluster create failed: " +
                             tail_of(nodes_.front()->dir() + "/cluster-create.log"));
  }
  // Every node must see every slot served before the cluster takes writes.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  for (const auto& n : nodes_) {
    while (redis_command(n->port(), {"CLUSTER", "INFO"}).find("cluster_state:ok") == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("cluster_state never ok");
      std::this_thread::sleep_for(20ms);
    }
  }
}

std::string RedisCluster::url() const {
  std::string out = "redis+cluster://";
  for (std::size_t i = 0; i < nodes_.size(); ++i) out += (i ? "," : "") + nodes_[i]->address();
  return out;
}

}  // namespace herald::testing
