// A small thread-safe Prometheus metrics registry (counters, gauges, histograms) for the servers,
// rendered in the Prometheus text exposition format 0.0.4.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

namespace fpgaserve::serving {

// Label name -> value, in order. Names must be the family's label names (in any order).
using Labels = std::vector<std::pair<std::string, std::string>>;

// A monotonically increasing value. Lock-free.
class Counter {
 public:
  // Throws std::invalid_argument for a negative or NaN increment: counters never go down.
  void Inc(double v = 1);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// A value that goes up and down. Lock-free.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted into fixed buckets (upper bounds, inclusive), plus their sum. Lock-free.
class Histogram {
 public:
  // `bucket_bounds` must be strictly increasing and finite; a trailing +Inf is dropped (the +Inf
  // bucket always exists). Throws std::invalid_argument otherwise.
  explicit Histogram(const std::vector<double>& bucket_bounds);

  // NaN lands in the +Inf bucket (and makes the sum NaN), as in the Prometheus client libraries.
  void Observe(double v);

  const std::vector<double>& bucket_bounds() const { return bounds_; }
  // Cumulative counts, one per bound plus the final +Inf bucket (== Count()).
  std::vector<std::uint64_t> CumulativeCounts() const;
  std::uint64_t Count() const;
  double Sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  // Per bucket (not cumulative), bounds_.size() + 1 entries; the count is their sum, so a
  // concurrent Render never shows _count disagreeing with the +Inf bucket.
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

// Families of metrics keyed by name, each with its series keyed by label values.
// Misuse throws (these are programming errors, found by the first request in any test):
// std::invalid_argument for a malformed metric or label name, bucket bounds or label value;
// std::logic_error for an existing name asked again with another type, label-name set or buckets,
// or for a name whose samples would collide with another family's (e.g. `x_count` next to the
// histogram `x`). The help text of the first call wins.
class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The returned references stay valid for the registry's lifetime; callers may cache them.
  Counter& GetCounter(const std::string& name, const std::string& help, const Labels& labels);
  Gauge& GetGauge(const std::string& name, const std::string& help, const Labels& labels);
  Histogram& GetHistogram(const std::string& name, const std::string& help, const Labels& labels,
                          const std::vector<double>& bucket_bounds);

  // Prometheus text format 0.0.4: families in name order, series in label-value order.
  std::string Render() const;

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Family;  // defined in metrics.cc
  template <typename M>
  M& GetMetric(Kind kind, const std::string& name, const std::string& help, const Labels& labels,
               const std::vector<double>* bucket_bounds);

  mutable std::shared_mutex mu_;
  std::map<std::string, std::unique_ptr<Family>, std::less<>> families_;
  // Every sample name in use (x, x_bucket, x_sum, x_count) -> the family that owns it.
  std::map<std::string, std::string, std::less<>> sample_owners_;
};

// Latency buckets in seconds: 50 us .. 10 s in 1-2.5-5 steps.
std::vector<double> DefaultSecondsBuckets();
// Clock-cycle buckets: powers of 2 from 1 to 2^24.
std::vector<double> CycleBuckets();

}  // namespace fpgaserve::serving
