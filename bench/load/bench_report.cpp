#include "bench_report.hpp"

#include <cmath>
#include <cstdio>
#include <ostream>

#include <boost/json.hpp>

namespace herald::bench {

namespace {

constexpr std::pair<const char*, double> kQuantiles[] = {
    {"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p99.9", 0.999}};

double ms(std::chrono::nanoseconds ns) { return static_cast<double>(ns.count()) / 1e6; }

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

std::string format_number(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15) return fixed(v, 0);
  return fixed(v, std::fabs(v) >= 100 ? 1 : 3);
}

void BenchReport::print(std::ostream& out) const {
  for (const auto& row : rows_) {
    out << "\n" << row.scenario;
    for (const auto& [k, v] : row.params) out << "  " << k << "=" << v;
    out << "\n";
    for (const auto& [k, v] : row.values) out << "  " << k << ": " << format_number(v) << "\n";
    if (row.latencies.empty()) continue;
    char line[200];
    std::snprintf(line, sizeof line, "  %-24s %10s %9s %9s %9s %9s %9s %9s\n", "latency (ms)", "count", "mean",
                  "p50", "p90", "p99", "p99.9", "max");
    out << line;
    for (const auto& [name, h] : row.latencies) {
      std::snprintf(line, sizeof line, "  %-24s %10llu %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n", name.c_str(),
                    static_cast<unsigned long long>(h.count()), ms(h.mean()), ms(h.quantile(0.5)),
                    ms(h.quantile(0.9)), ms(h.quantile(0.99)), ms(h.quantile(0.999)), ms(h.max()));
      out << line;
    }
  }
  out.flush();
}

boost::json::value BenchReport::json() const {
  boost::json::array rows;
  for (const auto& row : rows_) {
    boost::json::object o;
    o["scenario"] = row.scenario;
    boost::json::object params;
    for (const auto& [k, v] : row.params) params[k] = v;
    o["params"] = std::move(params);
    boost::json::object values;
    for (const auto& [k, v] : row.values) values[k] = v;
    o["values"] = std::move(values);
    boost::json::object lat;
    for (const auto& [name, h] : row.latencies) {
      boost::json::object l{{"count", h.count()}, {"mean_ms", ms(h.mean())}, {"max_ms", ms(h.max())}};
      for (const auto& [qn, q] : kQuantiles) l[std::string(qn) + "_ms"] = ms(h.quantile(q));
      lat[name] = std::move(l);
    }
    o["latency"] = std::move(lat);
    rows.push_back(std::move(o));
  }
  return rows;
}

}  // namespace herald::bench
