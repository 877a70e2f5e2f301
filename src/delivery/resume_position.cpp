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
  } else {
    // What left above the cursor had not been acked; below it, the device
    // is taken to have acked it...
    const std::uint64_t acked = std::max(d.position, device_cursor.value_or(0));
    d.recovered = inbox.max_lost_seq <= acked;
    // ...unless its lost mark says otherwise: a cursor passes a gap once the
    // device acks past it, and a position below the cursor is behind the gap
    // again. Both must agree, so that a node of an older version, which
    // removes messages without raising marks (a rolling upgrade on redis),
    // cannot make a stale mark claim a whole inbox.
    // A mark above the inbox's highest lost seq is from an earlier epoch (an
    // older node re-created the inbox and left the marks): it says nothing.
    const bool mark_holds = device_lost_mark && *device_lost_mark <= inbox.max_lost_seq;
    if (device_cursor && mark_holds && *device_lost_mark > d.position) d.recovered = false;
  }
  return d;
}

}  // namespace herald::delivery
