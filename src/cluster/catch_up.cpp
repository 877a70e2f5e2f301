#include "cluster/catch_up.hpp"

#include <unordered_map>
#include <vector>

namespace herald::cluster {

std::size_t CatchUp::tick() {
  stats_.ticks.fetch_add(1, std::memory_order_relaxed);
  const auto connections = hub_.shard_connections(next_shard_);
  next_shard_ = (next_shard_ + 1) % hub::Hub::shard_count();
  if (connections.empty()) return 0;

  std::vector<std::string> users;
  std::unordered_map<std::string, std::size_t> index;
  std::vector<hub::ConnectionInfo> infos;
  infos.reserve(connections.size());
  for (const auto& c : connections) {
    infos.push_back(c->info());
    if (index.emplace(infos.back().user, users.size()).second) users.push_back(infos.back().user);
  }
  const auto heads = store_.head_seqs(users);
  stats_.users_checked.fetch_add(users.size(), std::memory_order_relaxed);

  std::size_t notified = 0;
  for (std::size_t i = 0; i < connections.size(); ++i) {
    const auto head = heads.at(index.at(infos[i].user));
    // Behind: something after what this connection was sent. A full window
    // (max_inflight) also looks behind; the notify is then a no-op.
    if (head > infos[i].last_sent && head > infos[i].cursor) {
      connections[i]->notify();
      ++notified;
    }
  }
  stats_.notified.fetch_add(notified, std::memory_order_relaxed);
  return notified;
}

}  // namespace herald::cluster
