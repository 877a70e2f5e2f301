#include "delivery/inflight_window.hpp"

#include <cassert>

namespace herald::delivery {

InflightWindow::InflightWindow(std::uint32_t max_inflight, std::uint64_t start_position)
    : max_inflight_(max_inflight), last_sent_(start_position), cursor_(start_position) {}

InflightEntry& InflightWindow::on_sent(store::MessagePtr message, std::int64_t now_ms) {
  assert(message->seq > last_sent_);
  last_sent_ = message->seq;
  auto& e = entries_[message->seq];
  e.message = std::move(message);
  e.attempt = 1;
  e.first_sent_ms = now_ms;
  return e;
}

InflightEntry* InflightWindow::find(std::uint64_t seq) {
  auto it = entries_.find(seq);
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<InflightEntry> InflightWindow::ack(std::uint64_t seq) {
  std::vector<InflightEntry> out;
  auto it = entries_.find(seq);
  if (it == entries_.end()) return out;
  out.push_back(std::move(it->second));
  entries_.erase(it);
  advance_cursor();
  return out;
}

std::vector<InflightEntry> InflightWindow::ack_upto(std::uint64_t upto) {
  std::vector<InflightEntry> out;
  while (!entries_.empty() && entries_.begin()->first <= upto) {
    out.push_back(std::move(entries_.begin()->second));
    entries_.erase(entries_.begin());
  }
  advance_cursor();
  return out;
}

void InflightWindow::advance_cursor() {
  // Everything sent below the lowest unacked seq is acked; seqs never sent
  // in between were not retained (collapsed, expired) and do not hold it back.
  cursor_ = entries_.empty() ? last_sent_ : entries_.begin()->first - 1;
}

std::vector<InflightEntry> InflightWindow::take_all() {
  std::vector<InflightEntry> out;
  for (auto& [seq, e] : entries_) out.push_back(std::move(e));
  entries_.clear();
  return out;
}

}  // namespace herald::delivery
