#pragma once
// Devices that connected on other nodes in the last few seconds (the
// "device connected" messages of docs/cluster.md). A connection that is
// still being set up here when such a message arrives is not in the hub
// yet, so the message cannot close it; the connect handler asks this
// memory once its connection is in the hub, and closes it with 4011 if a
// remote connection replaces it (PROTOCOL.md 2: one live connection per
// device). The message's handler writes here before it looks in the hub,
// and the connect handler adds to the hub before it looks here: whichever
// comes second sees the other. Thread-safe.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

#include "hub/live_connection.hpp"

namespace herald::hub {

class RecentRemoteConnects {
 public:
  static constexpr std::int64_t kKeepMs = 5000;
  static constexpr std::size_t kMaxEntries = 16384;

  void remember(const std::string& user, const std::string& device, ConnectStamp stamp, std::int64_t now_ms);
  // True when a remote connection heard of in the last kKeepMs replaces a
  // local one with this stamp.
  bool replaced_by_remote(const std::string& user, const std::string& device, const ConnectStamp& local,
                          std::int64_t now_ms) const;
  std::size_t size() const;

 private:
  struct Heard {
    ConnectStamp stamp;
    std::int64_t heard_ms = 0;
  };
  static std::string key(const std::string& user, const std::string& device);
  void forget_old_locked(std::int64_t now_ms);

  mutable std::mutex mu_;
  std::unordered_map<std::string, Heard> by_device_;
  std::deque<std::pair<std::int64_t, std::string>> order_;  // (heard_ms, key), oldest first
};

}  // namespace herald::hub
