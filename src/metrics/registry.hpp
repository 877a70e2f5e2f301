#pragma once
// Named, labelled metrics of one server and their Prometheus text exposition.
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "metrics/counter.hpp"
#include "metrics/gauge.hpp"
#include "metrics/histogram.hpp"

namespace herald::metrics {

// Label name/value pairs. Order does not matter: a label set is sorted by name
// on registration, so {a,b} and {b,a} name the same series.
using Labels = std::vector<std::pair<std::string, std::string>>;

// Owns every metric of one server (no global registry: two servers in one
// process keep separate numbers) and renders them for GET /metrics.
//
// Threads: registration and expose() take one mutex and may be called from
// any thread; they belong to start-up, connection set-up and scrapes, never to
// a per-frame path. The returned Counter/Gauge/Histogram references stay valid
// as long as the registry and are updated lock-free from any thread; callers
// keep the reference rather than looking a metric up per event.
//
// Errors: an invalid metric or label name, or a duplicate label name, throws
// std::invalid_argument; a name registered with another type, a histogram with
// other bounds, or an object series clashing with a function series (or a
// second function for the same series) throws std::logic_error. The first
// help text of a family wins.
//
// Knows nothing of HTTP: the transport serves expose() with content type
// `text/plain; version=0.0.4`.
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Idempotent: the same name and labels return the same object.
  Counter& counter(std::string_view name, std::string_view help, Labels labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, Labels labels = {});
  // bounds: see Histogram; usually latency_buckets_seconds(). The label `le` is reserved.
  Histogram& histogram(std::string_view name, std::string_view help, std::vector<double> bounds,
                       Labels labels = {});

  // Series computed at scrape time (a sum over I/O threads, a queue depth
  // owned elsewhere). fn is called from the scraping thread under the
  // registry's mutex: it must be thread-safe and must not call the registry.
  void gauge_fn(std::string_view name, std::string_view help, std::function<double()> fn, Labels labels = {});
  void counter_fn(std::string_view name, std::string_view help, std::function<double()> fn,
                  Labels labels = {});

  // Prometheus text format 0.0.4: per family (sorted by name) one # HELP and
  // one # TYPE line, then its series sorted by label values; histograms as
  // cumulative _bucket{le=...} lines ending with +Inf, then _sum and _count.
  std::string expose() const;

 private:
  enum class Type { counter, gauge, histogram };

  using Series = std::variant<std::unique_ptr<Counter>, std::unique_ptr<Gauge>, std::unique_ptr<Histogram>,
                              std::function<double()>>;

  struct Family {
    Type type;                          // one type per name, checked on every registration
    std::string help;                   // from the first registration
    std::vector<double> bounds;         // histograms only: identical for all series
    std::map<Labels, Series> series;    // by sorted label set; node-based, so references stay valid
  };

  static const char* type_name(Type type);  // as written after # TYPE
  // Both with mutex_ held. family() finds or creates a family and checks its type.
  Family& family(std::string_view name, std::string_view help, Type type);
  template <class T, class... Args>
  static T& object(Family& f, std::string_view name, Labels labels, Args&&... args);
  void function(std::string_view name, std::string_view help, Type type, std::function<double()> fn,
                Labels labels);

  mutable std::mutex mutex_;                             // guards families_ and serializes scrapes
  std::map<std::string, Family, std::less<>> families_;  // by name: the exposition order
};

}  // namespace herald::metrics
