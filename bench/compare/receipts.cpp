#include "receipts.hpp"

#include <algorithm>
#include <bit>

#include <boost/json.hpp>

namespace herald::bench::compare {

std::string stamped_payload(int run, std::uint64_t k, std::int64_t intended_ns, int data_bytes) {
  std::string s = R"({"r":)" + std::to_string(run) + R"(,"i":)" + std::to_string(k) + R"(,"t":)" +
                  std::to_string(intended_ns) + R"(,"pad":")";
  const std::size_t want = static_cast<std::size_t>(std::max(0, data_bytes));
  if (s.size() + 2 < want) s.append(want - s.size() - 2, 'x');
  s += "\"}";
  return s;
}

std::optional<Stamp> read_stamp(std::string_view payload) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(payload, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  const auto* r = o.if_contains("r");
  const auto* i = o.if_contains("i");
  const auto* t = o.if_contains("t");
  if (r == nullptr || i == nullptr || t == nullptr || !r->is_int64() || !i->is_int64() || !t->is_int64()) {
    return std::nullopt;
  }
  return Stamp{r->as_int64(), i->as_int64(), t->as_int64()};
}

void Receipts::start_run(int run, std::uint64_t total, std::int64_t start_ns, std::int64_t window_start_ns) {
  std::lock_guard lock(mu_);
  run_ = run;
  total_ = total;
  start_ns_ = start_ns;
  window_start_ns_ = window_start_ns;
  seen_.assign((total + 63) / 64, 0);
  totals_ = Totals();
}

void Receipts::end_run() {
  std::lock_guard lock(mu_);
  run_ = 0;
}

void Receipts::record(std::string_view payload, std::int64_t now_ns) {
  const auto st = read_stamp(payload);
  std::lock_guard lock(mu_);
  if (!st || run_ == 0 || st->run != run_ || st->intended_ns < start_ns_ || st->k < 0 ||
      static_cast<std::uint64_t>(st->k) >= total_) {
    ++totals_.ignored;
    return;
  }
  const std::int64_t t = st->intended_ns;
  const auto k = static_cast<std::uint64_t>(st->k);
  std::uint64_t& word = seen_[k / 64];
  const std::uint64_t bit = std::uint64_t{1} << (k % 64);
  if ((word & bit) != 0) {
    ++totals_.duplicates;
    return;
  }
  word |= bit;
  ++totals_.received;
  if (t >= window_start_ns_) totals_.latency.record(std::chrono::nanoseconds(now_ns - t));
}

std::uint64_t Receipts::received() const {
  std::lock_guard lock(mu_);
  return totals_.received;
}

Receipts::Totals Receipts::totals() const {
  std::lock_guard lock(mu_);
  return totals_;
}

std::uint64_t Receipts::missing(const std::vector<std::uint64_t>& acked) const {
  std::lock_guard lock(mu_);
  std::uint64_t n = 0;
  for (std::size_t w = 0; w < acked.size(); ++w) {
    const std::uint64_t seen = w < seen_.size() ? seen_[w] : 0;
    n += static_cast<std::uint64_t>(std::popcount(acked[w] & ~seen));
  }
  return n;
}

}  // namespace herald::bench::compare
