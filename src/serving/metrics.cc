#include "serving/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <type_traits>

#include "core/text.h"

namespace fpgaserve::serving {
namespace {

bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

// [a-zA-Z_:][a-zA-Z0-9_:]*
void ValidateMetricName(const std::string& name) {
  bool ok = !name.empty() && !IsAsciiDigit(name[0]);
  for (char c : name) ok = ok && (IsAsciiLetter(c) || IsAsciiDigit(c) || c == '_' || c == ':');
  if (!ok) {
    throw std::invalid_argument("metric name " + Quote(name) +
                                " is not valid: expected [a-zA-Z_:][a-zA-Z0-9_:]*");
  }
}

// [a-zA-Z_][a-zA-Z0-9_]*, and not starting with "__" (reserved for Prometheus' own labels).
void ValidateLabelName(const std::string& metric, const std::string& label) {
  bool ok = !label.empty() && !IsAsciiDigit(label[0]) && label.rfind("__", 0) != 0;
  for (char c : label) ok = ok && (IsAsciiLetter(c) || IsAsciiDigit(c) || c == '_');
  if (!ok) {
    throw std::invalid_argument("metric " + Quote(metric) + ": label name " + Quote(label) +
                                " is not valid: expected [a-zA-Z_][a-zA-Z0-9_]* not starting "
                                "with __");
  }
}

// Prometheus rejects exposition text that is not UTF-8.
bool IsValidUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      len = 2;
      cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3;
      cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4;
      cp = b & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr std::uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

void ValidateUtf8(const std::string& metric, std::string_view what, const std::string& text) {
  if (!IsValidUtf8(text)) {
    throw std::invalid_argument("metric " + Quote(metric) + ": " + std::string(what) +
                                " is not valid UTF-8");
  }
}

std::vector<double> NormalizeBounds(const std::vector<double>& given) {
  std::vector<double> bounds = given;
  if (!bounds.empty() && std::isinf(bounds.back()) && bounds.back() > 0) bounds.pop_back();
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      throw std::invalid_argument("histogram bucket bound " + std::to_string(i) + " is " +
                                  FormatDouble(bounds[i]) + ": expected a finite number");
    }
    if (i > 0 && !(bounds[i - 1] < bounds[i])) {
      throw std::invalid_argument("histogram bucket bounds must be strictly increasing: bound " +
                                  std::to_string(i) + " (" + FormatDouble(bounds[i]) +
                                  ") follows " + FormatDouble(bounds[i - 1]));
    }
  }
  return bounds;
}

// Equal to `normalized`, give or take a trailing +Inf; no allocation (this is on the lookup path).
bool SameBounds(const std::vector<double>& normalized, const std::vector<double>& given) {
  std::size_t n = given.size();
  if (n == normalized.size() + 1 && std::isinf(given.back()) && given.back() > 0) --n;
  return n == normalized.size() && std::equal(normalized.begin(), normalized.end(), given.begin());
}

std::string BoundsText(const std::vector<double>& bounds) {
  std::string s = "[";
  for (std::size_t i = 0; i < bounds.size(); ++i) s += (i ? ", " : "") + FormatDouble(bounds[i]);
  return s + "]";
}

// Integers print without an exponent when exact; everything else shortest-round-trip, which the
// Prometheus parser (Go's ParseFloat) reads back exactly.
void AppendValue(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else if (v == std::trunc(v) && std::fabs(v) < 0x1p63) {
    out += std::to_string(static_cast<std::int64_t>(v));
  } else {
    out += FormatDouble(v);
  }
}

void AppendEscaped(std::string& out, std::string_view s, bool escape_quote) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && escape_quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// {a="x",b="y"} with an optional extra `le` label last; nothing when there are no labels at all.
void AppendLabels(std::string& out, const std::vector<std::string>& names,
                  const std::vector<std::string>& values, const std::string* le = nullptr) {
  if (names.empty() && le == nullptr) return;
  out += '{';
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) out += ',';
    out += names[i];
    out += "=\"";
    AppendEscaped(out, values[i], /*escape_quote=*/true);
    out += '"';
  }
  if (le != nullptr) {
    if (!names.empty()) out += ',';
    out += "le=\"";
    out += *le;
    out += '"';
  }
  out += '}';
}

std::string JoinNames(const Labels& labels) {
  std::string s = "(";
  for (std::size_t i = 0; i < labels.size(); ++i) s += (i ? ", " : "") + labels[i].first;
  return s + ")";
}

// Orders series by their label values (in the family's label-name order). Transparent, so a
// lookup with Labels already in that order needs no key allocation.
struct SeriesKeyLess {
  using is_transparent = void;
  using Key = std::vector<std::string>;
  bool operator()(const Key& a, const Key& b) const { return a < b; }
  bool operator()(const Key& a, const Labels& b) const { return Compare(a, b) < 0; }
  bool operator()(const Labels& a, const Key& b) const { return Compare(b, a) > 0; }

  // Lexicographic, like std::vector<std::string>'s operator<=>, against the label values.
  static int Compare(const Key& a, const Labels& b) {
    std::size_t n = std::min(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i) {
      if (int c = a[i].compare(b[i].second); c != 0) return c;
    }
    return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
  }
};

template <typename M>
using SeriesMap = std::map<std::vector<std::string>, std::unique_ptr<M>, SeriesKeyLess>;

}  // namespace

// ---------------------------------------------------------------------------------------------
// Metric values

void Counter::Inc(double v) {
  if (!(v >= 0)) {
    throw std::invalid_argument("Counter::Inc(" + FormatDouble(v) +
                                "): a counter only increases; use a Gauge");
  }
  value_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Histogram(const std::vector<double>& bucket_bounds)
    : bounds_(NormalizeBounds(bucket_bounds)),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::Observe(double v) {
  // First bound >= v: buckets are inclusive upper bounds. NaN compares false everywhere, so it
  // is sent to the +Inf bucket explicitly.
  std::size_t i = std::isnan(v)
                      ? bounds_.size()
                      : static_cast<std::size_t>(
                            std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<std::uint64_t> Histogram::CumulativeCounts() const {
  std::vector<std::uint64_t> out(bounds_.size() + 1);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

std::uint64_t Histogram::Count() const { return CumulativeCounts().back(); }

// ---------------------------------------------------------------------------------------------
// The registry

struct MetricsRegistry::Family {
  std::string name;
  Kind kind;
  std::string help;
  std::vector<std::string> label_names;
  std::vector<double> bounds;  // histograms only, normalized
  // Only the map matching `kind` is used.
  SeriesMap<Counter> counters;
  SeriesMap<Gauge> gauges;
  SeriesMap<Histogram> histograms;

  template <typename M>
  SeriesMap<M>& Series() {
    if constexpr (std::is_same_v<M, Counter>) {
      return counters;
    } else if constexpr (std::is_same_v<M, Gauge>) {
      return gauges;
    } else {
      static_assert(std::is_same_v<M, Histogram>);
      return histograms;
    }
  }

  static const char* KindName(Kind k) {
    switch (k) {
      case Kind::kCounter:
        return "counter";
      case Kind::kGauge:
        return "gauge";
      case Kind::kHistogram:
        return "histogram";
    }
    return "untyped";
  }

  // Throws std::logic_error unless a request for (kind, labels, bounds) fits this family.
  // Returns whether `labels` are already in the family's label order.
  bool CheckCompatible(Kind want, const Labels& labels,
                       const std::vector<double>* bucket_bounds) const {
    if (want != kind) {
      throw std::logic_error("metric " + Quote(name) + " is a " + KindName(kind) +
                             ", asked for as a " + KindName(want));
    }
    if (bucket_bounds != nullptr && !SameBounds(bounds, *bucket_bounds)) {
      throw std::logic_error("histogram " + Quote(name) + " has bucket bounds " +
                             BoundsText(bounds) + ", asked for with " + BoundsText(*bucket_bounds));
    }
    bool same_size = labels.size() == label_names.size();
    bool in_order = same_size;
    for (std::size_t i = 0; in_order && i < labels.size(); ++i) {
      in_order = labels[i].first == label_names[i];
    }
    if (in_order) return true;
    bool same_set = same_size;
    for (std::size_t i = 0; same_set && i < label_names.size(); ++i) {
      same_set = std::any_of(labels.begin(), labels.end(),
                             [&](const auto& l) { return l.first == label_names[i]; });
    }
    if (!same_set) {
      std::string have = "(";
      for (std::size_t i = 0; i < label_names.size(); ++i) {
        have += (i ? ", " : "") + label_names[i];
      }
      throw std::logic_error("metric " + Quote(name) + " has labels " + have +
                             "), asked for with " + JoinNames(labels));
    }
    return false;
  }

  // The label values in this family's label order; `labels` passed CheckCompatible.
  std::vector<std::string> KeyFor(const Labels& labels) const {
    std::vector<std::string> key;
    key.reserve(label_names.size());
    for (const std::string& n : label_names) {
      key.push_back(std::find_if(labels.begin(), labels.end(), [&](const auto& l) {
                      return l.first == n;
                    })->second);
    }
    return key;
  }

  template <typename M>
  M* Find(const Labels& labels, bool in_order) {
    SeriesMap<M>& series = Series<M>();
    auto it = in_order ? series.find(labels) : series.find(KeyFor(labels));
    return it == series.end() ? nullptr : it->second.get();
  }

  std::vector<std::string> SampleNames() const {
    if (kind != Kind::kHistogram) return {name};
    return {name + "_bucket", name + "_sum", name + "_count"};
  }
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

template <typename M>
M& MetricsRegistry::GetMetric(Kind kind, const std::string& name, const std::string& help,
                              const Labels& labels, const std::vector<double>* bucket_bounds) {
  // The common case, every request: the series exists; readers do not block each other.
  {
    std::shared_lock lock(mu_);
    auto it = families_.find(name);
    if (it != families_.end()) {
      Family& family = *it->second;
      bool in_order = family.CheckCompatible(kind, labels, bucket_bounds);
      if (M* m = family.Find<M>(labels, in_order)) return *m;
    }
  }

  std::unique_lock lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) {
    ValidateMetricName(name);
    ValidateUtf8(name, "help text", help);
    auto family = std::make_unique<Family>();
    family->name = name;
    family->kind = kind;
    family->help = help;
    for (const auto& [label, value] : labels) {
      ValidateLabelName(name, label);
      if (kind == Kind::kHistogram && label == "le") {
        throw std::invalid_argument("histogram " + Quote(name) +
                                    ": the label name 'le' is reserved for bucket bounds");
      }
      if (std::find(family->label_names.begin(), family->label_names.end(), label) !=
          family->label_names.end()) {
        throw std::invalid_argument("metric " + Quote(name) + ": label " + Quote(label) +
                                    " given twice");
      }
      family->label_names.push_back(label);
    }
    if (bucket_bounds != nullptr) family->bounds = NormalizeBounds(*bucket_bounds);
    std::vector<std::string> samples = family->SampleNames();
    for (const std::string& s : samples) {
      auto owner = sample_owners_.find(s);
      if (owner != sample_owners_.end()) {
        throw std::logic_error("metric " + Quote(name) + " would expose samples named " + Quote(s) +
                               ", which clash with metric " + Quote(owner->second));
      }
    }
    for (const std::string& s : samples) sample_owners_.emplace(s, name);
    it = families_.emplace(name, std::move(family)).first;
  }

  Family& family = *it->second;
  bool in_order = family.CheckCompatible(kind, labels, bucket_bounds);
  if (M* m = family.Find<M>(labels, in_order)) return *m;  // created while we waited

  std::vector<std::string> key = family.KeyFor(labels);
  for (std::size_t i = 0; i < key.size(); ++i) {
    ValidateUtf8(name, "value of label " + Quote(family.label_names[i]), key[i]);
  }
  std::unique_ptr<M> metric;
  if constexpr (std::is_same_v<M, Histogram>) {
    metric = std::make_unique<Histogram>(family.bounds);
  } else {
    metric = std::make_unique<M>();
  }
  M& ref = *metric;
  family.Series<M>().emplace(std::move(key), std::move(metric));
  return ref;
}

Counter& MetricsRegistry::GetCounter(const std::string& name, const std::string& help,
                                     const Labels& labels) {
  return GetMetric<Counter>(Kind::kCounter, name, help, labels, nullptr);
}

Gauge& MetricsRegistry::GetGauge(const std::string& name, const std::string& help,
                                 const Labels& labels) {
  return GetMetric<Gauge>(Kind::kGauge, name, help, labels, nullptr);
}

Histogram& MetricsRegistry::GetHistogram(const std::string& name, const std::string& help,
                                         const Labels& labels,
                                         const std::vector<double>& bucket_bounds) {
  return GetMetric<Histogram>(Kind::kHistogram, name, help, labels, &bucket_bounds);
}

std::string MetricsRegistry::Render() const {
  std::shared_lock lock(mu_);
  std::string out;
  for (const auto& entry : families_) {
    // Not a structured binding: clang cannot capture those in the lambda below.
    const std::string& name = entry.first;
    const Family* family = entry.second.get();
    out += "# HELP ";
    out += name;
    out += ' ';
    AppendEscaped(out, family->help, /*escape_quote=*/false);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += Family::KindName(family->kind);
    out += '\n';
    const std::vector<std::string>& names = family->label_names;
    auto scalar = [&](const std::vector<std::string>& values, double v) {
      out += name;
      AppendLabels(out, names, values);
      out += ' ';
      AppendValue(out, v);
      out += '\n';
    };
    for (const auto& [values, counter] : family->counters) scalar(values, counter->Value());
    for (const auto& [values, gauge] : family->gauges) scalar(values, gauge->Value());
    for (const auto& [values, histogram] : family->histograms) {
      std::vector<std::uint64_t> cumulative = histogram->CumulativeCounts();
      for (std::size_t i = 0; i < cumulative.size(); ++i) {
        std::string le;
        if (i < family->bounds.size()) {
          AppendValue(le, family->bounds[i]);
        } else {
          le = "+Inf";
        }
        out += name;
        out += "_bucket";
        AppendLabels(out, names, values, &le);
        out += ' ';
        out += std::to_string(cumulative[i]);
        out += '\n';
      }
      out += name;
      out += "_sum";
      AppendLabels(out, names, values);
      out += ' ';
      AppendValue(out, histogram->Sum());
      out += '\n';
      out += name;
      out += "_count";
      AppendLabels(out, names, values);
      out += ' ';
      out += std::to_string(cumulative.back());
      out += '\n';
    }
  }
  return out;
}

std::vector<double> DefaultSecondsBuckets() {
  return {50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3,
          50e-3, 100e-3, 250e-3, 500e-3, 1,    2.5,    5,    10};
}

std::vector<double> CycleBuckets() {
  std::vector<double> bounds;
  for (int i = 0; i <= 24; ++i) bounds.push_back(std::ldexp(1.0, i));
  return bounds;
}

}  // namespace fpgaserve::serving
