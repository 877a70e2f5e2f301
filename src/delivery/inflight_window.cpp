#include "delivery/inflight_window.hpp"

#include <algorithm>
#include <cassert>

namespace herald::delivery {

namespace {

bool seq_below(const InflightEntry& e, std::uint64_t seq) { return e.message->seq < seq; }

}  // namespace

InflightWindow::InflightWindow(std::uint64_t start_position)
    : last_sent_(start_position), cursor_(start_position) {}

InflightEntry& InflightWindow::on_sent(store::MessagePtr message, std::int64_t now_ms) {
  assert(message->seq > last_sent_);
  last_sent_ = message->seq;
  InflightEntry& e = entries_.emplace_back();
  e.message = std::move(message);
  e.attempt = 1;
  e.first_sent_ms = now_ms;
  return e;
}

InflightEntry* InflightWindow::find(std::uint64_t seq) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), seq, seq_below);
  return it == entries_.end() || it->message->seq != seq ? nullptr : &*it;
}

std::vector<InflightEntry> InflightWindow::ack(std::uint64_t seq) {
  std::vector<InflightEntry> out;
  auto it = std::lower_bound(entries_.begin(), entries_.end(), seq, seq_below);
  if (it == entries_.end() || it->message->seq != seq) return out;
  out.push_back(std::move(*it));
  entries_.erase(it);
  advance_cursor();
  release_if_empty();
  return out;
}

std::vector<InflightEntry> InflightWindow::ack_upto(std::uint64_t upto) {
  std::vector<InflightEntry> out;
  while (!entries_.empty() && entries_.front().message->seq <= upto) {
    out.push_back(std::move(entries_.front()));
    entries_.pop_front();
  }
  advance_cursor();
  release_if_empty();
  return out;
}

void InflightWindow::advance_cursor() {
  // Everything sent below the lowest unacked seq is acked; seqs never sent
  // in between were not retained (collapsed, expired) and do not hold it back.
  cursor_ = entries_.empty() ? last_sent_ : entries_.front().message->seq - 1;
}

// An idle connection holds no entry storage.
void InflightWindow::release_if_empty() {
  if (entries_.empty() && entries_.capacity() > 0) decltype(entries_)().swap(entries_);
}

std::vector<InflightEntry> InflightWindow::take_all() {
  std::vector<InflightEntry> out(std::make_move_iterator(entries_.begin()), std::make_move_iterator(entries_.end()));
  decltype(entries_)().swap(entries_);
  return out;
}

}  // namespace herald::delivery
