#include "metrics/registry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <system_error>

namespace herald::metrics {
namespace {

// ------------------------------------------------------------------ names

bool is_name_char(char c, bool first, bool colon_allowed) {
  const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  if (letter || (colon_allowed && c == ':')) return true;
  return !first && c >= '0' && c <= '9';
}

// Prometheus data model: metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names
// [a-zA-Z_][a-zA-Z0-9_]*.
bool is_valid_name(std::string_view name, bool colon_allowed) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!is_name_char(name[i], i == 0, colon_allowed)) return false;
  }
  return true;
}

// Sorted by name, so a label set has one spelling; validated once here.
Labels canonical_labels(Labels labels, bool histogram) {
  std::sort(labels.begin(), labels.end());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const std::string& name = labels[i].first;
    if (!is_valid_name(name, false) || name.starts_with("__")) {
      throw std::invalid_argument("metrics: invalid label name '" + name + "'");
    }
    if (histogram && name == "le") throw std::invalid_argument("metrics: label 'le' is reserved for histograms");
    if (i > 0 && labels[i - 1].first == name) {
      throw std::invalid_argument("metrics: duplicate label name '" + name + "'");
    }
  }
  return labels;
}

// ------------------------------------------------------------- exposition

void append_escaped(std::string& out, std::string_view text, bool escape_quote) {
  for (const char c : text) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '"':
        if (escape_quote) {
          out += "\\\"";
        } else {
          out += c;
        }
        break;
      default: out += c;
    }
  }
}

template <class T>
void append_number(std::string& out, T v) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec == std::errc{}) out.append(buf, end);
}

// Shortest text that reads back as the same double; the spellings of the
// non-finite values are the ones the format defines.
void append_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    append_number(out, v);
  }
}

// name{a="x",b="y",le="0.5"} with the extra `le` label last, or no braces at all.
void append_series_name(std::string& out, std::string_view name, std::string_view suffix, const Labels& labels,
                        const double* le) {
  out += name;
  out += suffix;
  if (labels.empty() && le == nullptr) return;
  out += '{';
  bool first = true;
  for (const auto& [label, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += label;
    out += "=\"";
    append_escaped(out, value, true);
    out += '"';
  }
  if (le != nullptr) {
    if (!first) out += ',';
    out += "le=\"";
    append_value(out, *le);
    out += '"';
  }
  out += '}';
}

}  // namespace

// --------------------------------------------------------------- registration

const char* Registry::type_name(Type type) {
  switch (type) {
    case Type::counter: return "counter";
    case Type::gauge: return "gauge";
    case Type::histogram: return "histogram";
  }
  return "untyped";
}

Registry::Family& Registry::family(std::string_view name, std::string_view help, Type type) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    if (!is_valid_name(name, true)) throw std::invalid_argument("metrics: invalid metric name '" + std::string(name) + "'");
    it = families_.emplace(std::string(name), Family{type, std::string(help), {}, {}}).first;
  } else if (it->second.type != type) {
    throw std::logic_error("metrics: '" + std::string(name) + "' is already registered as a " +
                           type_name(it->second.type) + ", not a " +
                           type_name(type));
  }
  return it->second;
}

template <class T, class... Args>
T& Registry::object(Family& f, std::string_view name, Labels labels, Args&&... args) {
  if (const auto it = f.series.find(labels); it != f.series.end()) {
    auto* existing = std::get_if<std::unique_ptr<T>>(&it->second);
    if (existing == nullptr) {
      throw std::logic_error("metrics: a series of '" + std::string(name) + "' is registered as a function");
    }
    return **existing;
  }
  auto created = std::make_unique<T>(std::forward<Args>(args)...);
  T& ref = *created;
  f.series.emplace(std::move(labels), std::move(created));
  return ref;
}

Counter& Registry::counter(std::string_view name, std::string_view help, Labels labels) {
  labels = canonical_labels(std::move(labels), false);
  const std::lock_guard lock(mutex_);
  return object<Counter>(family(name, help, Type::counter), name, std::move(labels));
}

Gauge& Registry::gauge(std::string_view name, std::string_view help, Labels labels) {
  labels = canonical_labels(std::move(labels), false);
  const std::lock_guard lock(mutex_);
  return object<Gauge>(family(name, help, Type::gauge), name, std::move(labels));
}

Histogram& Registry::histogram(std::string_view name, std::string_view help, std::vector<double> bounds,
                               Labels labels) {
  labels = canonical_labels(std::move(labels), true);
  Histogram::validate_bounds(bounds);  // before anything is registered
  const std::lock_guard lock(mutex_);
  Family& f = family(name, help, Type::histogram);
  if (f.series.empty()) {
    f.bounds = bounds;
  } else if (f.bounds != bounds) {
    // One family, one bucket layout: otherwise series cannot be aggregated.
    throw std::logic_error("metrics: histogram '" + std::string(name) + "' is registered with other bounds");
  }
  return object<Histogram>(f, name, std::move(labels), std::move(bounds));
}

void Registry::function(std::string_view name, std::string_view help, Type type, std::function<double()> fn,
                        Labels labels) {
  if (!fn) throw std::invalid_argument("metrics: empty function for '" + std::string(name) + "'");
  labels = canonical_labels(std::move(labels), false);
  const std::lock_guard lock(mutex_);
  Family& f = family(name, help, type);
  // Unlike objects, two functions cannot be "the same": a second one is a bug.
  if (!f.series.emplace(std::move(labels), std::move(fn)).second) {
    throw std::logic_error("metrics: series of '" + std::string(name) + "' is already registered");
  }
}

void Registry::gauge_fn(std::string_view name, std::string_view help, std::function<double()> fn, Labels labels) {
  function(name, help, Type::gauge, std::move(fn), std::move(labels));
}

void Registry::counter_fn(std::string_view name, std::string_view help, std::function<double()> fn,
                          Labels labels) {
  function(name, help, Type::counter, std::move(fn), std::move(labels));
}

// ----------------------------------------------------------------- exposition

std::string Registry::expose() const {
  const std::lock_guard lock(mutex_);
  std::string out;
  out.reserve(families_.size() * 256);
  for (const auto& [name, f] : families_) {
    out += "# HELP ";
    out += name;
    out += ' ';
    append_escaped(out, f.help, false);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type_name(f.type);
    out += '\n';
    for (const auto& [labels, series] : f.series) {
      if (const auto* h = std::get_if<std::unique_ptr<Histogram>>(&series)) {
        const std::vector<std::uint64_t> cumulative = (*h)->cumulative_counts();
        for (std::size_t i = 0; i < f.bounds.size(); ++i) {
          append_series_name(out, name, "_bucket", labels, &f.bounds[i]);
          out += ' ';
          append_number(out, cumulative[i]);
          out += '\n';
        }
        const double inf = HUGE_VAL;
        append_series_name(out, name, "_bucket", labels, &inf);
        out += ' ';
        append_number(out, cumulative.back());
        out += '\n';
        append_series_name(out, name, "_sum", labels, nullptr);
        out += ' ';
        append_value(out, (*h)->sum());
        out += '\n';
        // From the same snapshot as the buckets: _count equals the +Inf bucket.
        append_series_name(out, name, "_count", labels, nullptr);
        out += ' ';
        append_number(out, cumulative.back());
        out += '\n';
        continue;
      }
      append_series_name(out, name, "", labels, nullptr);
      out += ' ';
      if (const auto* c = std::get_if<std::unique_ptr<Counter>>(&series)) {
        append_number(out, (*c)->value());
      } else if (const auto* g = std::get_if<std::unique_ptr<Gauge>>(&series)) {
        append_number(out, (*g)->value());
      } else {
        append_value(out, std::get<std::function<double()>>(series)());
      }
      out += '\n';
    }
  }
  return out;
}

}  // namespace herald::metrics
