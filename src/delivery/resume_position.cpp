#include "delivery/resume_position.hpp"

#include <algorithm>

namespace herald::delivery {

ResumeDecision decide_resume(const ResumeRequest& req, const store::InboxState& inbox,
                             const std::optional<std::uint64_t>& device_cursor,
                             const std::vector<store::DeviceCursor>& user_cursors,
                             const std::optional<std::uint64_t>& device_lost_mark) {
  ResumeDecision d;
  d.known_device = device_cursor.has_value();
  const bool epoch_matches = !req.epoch || req.epoch->empty() || *req.epoch == inbox.epoch;
  if (req.last_seq && epoch_matches) {
    d.position = *req.last_seq;
  } else if (device_cursor) {
    d.position = *device_cursor;
  } else {
    for (const auto& c : user_cursors) d.position = std::max(d.position, c.cursor);
  }
  // A client claiming more than the inbox ever had is resumed at the head.
  d.position = std::min(d.position, inbox.head_seq);
  if (!epoch_matches) {
    d.recovered = false;
  } else if (device_cursor && device_lost_mark) {
    // Something after the position left by expiry or trim before this device
    // acked it. The mark, not the cursor: a cursor passes such a gap once the
    // device acks past it, and a position below the cursor is behind it again.
    d.recovered = *device_lost_mark <= d.position;
  } else {
    // No mark: what left above the cursor had not been acked; below it, the
    // device is taken to have acked it.
    const std::uint64_t acked = std::max(d.position, device_cursor.value_or(0));
    d.recovered = inbox.max_lost_seq <= acked;
  }
  return d;
}

}  // namespace herald::delivery
