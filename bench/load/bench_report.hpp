#pragma once
// Results of bench scenarios: one row per run (scenario + parameters),
// printed as a human table and as JSON (for docs/benchmarks.md and plots).
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>

#include "latency_histogram.hpp"

namespace herald::bench {

struct BenchRow {
  std::string scenario;
  std::vector<std::pair<std::string, std::string>> params;  // what was asked for
  std::vector<std::pair<std::string, double>> values;       // what came out (rates, counts)
  std::vector<std::pair<std::string, LatencyHistogram>> latencies;
};

class BenchReport {
 public:
  void add(BenchRow row) { rows_.push_back(std::move(row)); }
  // A run that measured nothing (no device connected, no publish accepted):
  // the rows are still printed, but the command fails, so that a script
  // does not publish zeros as results.
  void problem(std::string what) { problems_.push_back(std::move(what)); }
  const std::vector<std::string>& problems() const { return problems_; }
  const std::vector<BenchRow>& rows() const { return rows_; }
  // One block per row: parameters, values, then a percentile table in ms.
  void print(std::ostream& out) const;
  boost::json::value json() const;

 private:
  std::vector<BenchRow> rows_;
  std::vector<std::string> problems_;
};

std::string format_number(double v);

}  // namespace herald::bench
