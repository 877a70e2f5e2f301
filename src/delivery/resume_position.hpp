#pragma once
// Where a new connection starts (PROTOCOL.md 4.2, 10): last_seq with a
// matching or no epoch; else the device's stored cursor; for a device never
// seen, the highest cursor among the user's devices.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/message.hpp"

namespace herald::delivery {

struct ResumeRequest {
  std::optional<std::uint64_t> last_seq;
  std::optional<std::string> epoch;
};

struct ResumeDecision {
  std::uint64_t position = 0;  // every seq > position is sent
  bool recovered = true;       // false: the client may have missed data
  bool known_device = false;
};

// device_lost_mark: InboxStore::lost_mark() of a known device.
ResumeDecision decide_resume(const ResumeRequest& req, const store::InboxState& inbox,
                             const std::optional<std::uint64_t>& device_cursor,
                             const std::vector<store::DeviceCursor>& user_cursors,
                             const std::optional<std::uint64_t>& device_lost_mark = std::nullopt);

}  // namespace herald::delivery
