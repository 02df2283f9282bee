#include "serving/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/subprocess.h"

namespace fpgaserve::serving {
namespace {

TEST(MetricsTest, CounterIncrementsAndIsTheSameObjectEachTime) {
  MetricsRegistry r;
  Counter& c = r.GetCounter("requests_total", "Requests served.", {{"model", "banknote"}});
  c.Inc();
  c.Inc(2.5);
  Counter& again = r.GetCounter("requests_total", "ignored", {{"model", "banknote"}});
  EXPECT_EQ(&c, &again);
  EXPECT_EQ(again.Value(), 3.5);
  r.GetCounter("requests_total", "", {{"model", "iris"}}).Inc(4);
  EXPECT_EQ(r.Render(),
            "# HELP requests_total Requests served.\n"
            "# TYPE requests_total counter\n"
            "requests_total{model=\"banknote\"} 3.5\n"
            "requests_total{model=\"iris\"} 4\n");
}

TEST(MetricsTest, CounterRejectsDecrements) {
  MetricsRegistry r;
  Counter& c = r.GetCounter("c_total", "h", {});
  EXPECT_THROW(c.Inc(-1), std::invalid_argument);
  EXPECT_THROW(c.Inc(std::nan("")), std::invalid_argument);
  c.Inc(0);
  EXPECT_EQ(c.Value(), 0);
}

TEST(MetricsTest, GaugeSetsAndAdds) {
  MetricsRegistry r;
  Gauge& g = r.GetGauge("in_flight", "Requests in flight.", {});
  g.Set(5);
  g.Add(-2);
  g.Add(0.25);
  EXPECT_EQ(g.Value(), 3.25);
  EXPECT_EQ(r.Render(),
            "# HELP in_flight Requests in flight.\n"
            "# TYPE in_flight gauge\n"
            "in_flight 3.25\n");
}

TEST(MetricsTest, LabelsMayComeInAnyOrder) {
  MetricsRegistry r;
  Gauge& a = r.GetGauge("g", "h", {{"model", "m"}, {"board", "emu"}});
  Gauge& b = r.GetGauge("g", "h", {{"board", "emu"}, {"model", "m"}});
  EXPECT_EQ(&a, &b);
  a.Set(1);
  EXPECT_NE(r.Render().find("g{model=\"m\",board=\"emu\"} 1\n"), std::string::npos) << r.Render();
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithInclusiveBounds) {
  MetricsRegistry r;
  Histogram& h = r.GetHistogram("latency_seconds", "Latency.", {{"model", "m"}}, {1, 2, 5});
  for (double v : {0.5, 1.0, 1.5, 3.0, 10.0}) h.Observe(v);
  EXPECT_EQ(h.Count(), 5u);
  EXPECT_EQ(h.Sum(), 16);
  EXPECT_EQ(h.CumulativeCounts(), (std::vector<std::uint64_t>{2, 3, 4, 5}));
  EXPECT_EQ(r.Render(),
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{model=\"m\",le=\"1\"} 2\n"
            "latency_seconds_bucket{model=\"m\",le=\"2\"} 3\n"
            "latency_seconds_bucket{model=\"m\",le=\"5\"} 4\n"
            "latency_seconds_bucket{model=\"m\",le=\"+Inf\"} 5\n"
            "latency_seconds_sum{model=\"m\"} 16\n"
            "latency_seconds_count{model=\"m\"} 5\n");
}

TEST(MetricsTest, HistogramWithoutLabelsAndFractionalBounds) {
  MetricsRegistry r;
  // A trailing +Inf bound is accepted and not repeated.
  Histogram& h =
      r.GetHistogram("h_seconds", "h", {}, {5e-05, 0.25, std::numeric_limits<double>::infinity()});
  EXPECT_EQ(&h, &r.GetHistogram("h_seconds", "h", {}, {5e-05, 0.25}));
  h.Observe(0.1);
  h.Observe(std::nan(""));  // to +Inf, and the sum becomes NaN
  EXPECT_EQ(r.Render(),
            "# HELP h_seconds h\n"
            "# TYPE h_seconds histogram\n"
            "h_seconds_bucket{le=\"5e-05\"} 0\n"
            "h_seconds_bucket{le=\"0.25\"} 1\n"
            "h_seconds_bucket{le=\"+Inf\"} 2\n"
            "h_seconds_sum NaN\n"
            "h_seconds_count 2\n");
}

TEST(MetricsTest, EscapesLabelValuesAndHelp) {
  MetricsRegistry r;
  r.GetGauge("g", "line one\nback\\slash \"quoted\"", {{"path", "a\\b\"c\nd"}}).Set(1);
  EXPECT_EQ(r.Render(),
            "# HELP g line one\\nback\\\\slash \"quoted\"\n"
            "# TYPE g gauge\n"
            "g{path=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(MetricsTest, FamiliesInNameOrderSeriesInLabelOrder) {
  MetricsRegistry r;
  r.GetGauge("zeta", "z", {{"k", "b"}}).Set(2);
  r.GetGauge("alpha", "a", {}).Set(1);
  r.GetGauge("zeta", "z", {{"k", "a"}}).Set(3);
  EXPECT_EQ(r.Render(),
            "# HELP alpha a\n# TYPE alpha gauge\nalpha 1\n"
            "# HELP zeta z\n# TYPE zeta gauge\nzeta{k=\"a\"} 3\nzeta{k=\"b\"} 2\n");
}

TEST(MetricsTest, PrintsNumbersPrometheusReads) {
  MetricsRegistry r;
  const std::vector<std::pair<double, std::string>> cases = {
      {0, "0"},
      {-0.0, "0"},
      {1e6, "1000000"},
      {-42, "-42"},
      {0.1, "0.1"},
      {1.5e-7, "1.5e-07"},
      {9007199254740993.0, "9007199254740992"},  // exact: the double's value
      {1e300, "1e+300"},
      {std::numeric_limits<double>::infinity(), "+Inf"},
      {-std::numeric_limits<double>::infinity(), "-Inf"},
      {std::nan(""), "NaN"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    MetricsRegistry one;
    one.GetGauge("v", "h", {}).Set(cases[i].first);
    EXPECT_EQ(one.Render(), "# HELP v h\n# TYPE v gauge\nv " + cases[i].second + "\n")
        << "case " << i;
  }
}

TEST(MetricsTest, RejectsBadNames) {
  MetricsRegistry r;
  for (const char* bad : {"", "1abc", "a-b", "a b", "é", "a.b"}) {
    EXPECT_THROW(r.GetCounter(bad, "h", {}), std::invalid_argument) << bad;
  }
  for (const char* good : {"a", "_a", ":a", "a:b_c9", "__internal"}) {
    EXPECT_NO_THROW(r.GetCounter(good, "h", {})) << good;
  }
  for (const char* bad : {"", "1a", "a-b", "a:b", "__name__", "__x"}) {
    EXPECT_THROW(
        r.GetGauge("g_" + std::to_string(std::string(bad).size()) + "x", "h", {{bad, "v"}}),
        std::invalid_argument)
        << bad;
  }
  EXPECT_NO_THROW(r.GetGauge("ok", "h", {{"_a", "v"}, {"b9", "w"}}));
  EXPECT_THROW(r.GetGauge("dup", "h", {{"a", "1"}, {"a", "2"}}), std::invalid_argument);
  EXPECT_THROW(r.GetHistogram("h1", "h", {{"le", "1"}}, {1}), std::invalid_argument);
  EXPECT_NO_THROW(r.GetGauge("le_is_fine_here", "h", {{"le", "1"}}));
  EXPECT_THROW(r.GetGauge("utf8", "h", {{"a", "\xff"}}), std::invalid_argument);
  EXPECT_THROW(r.GetGauge("utf8_help", "\xc0\x80", {}), std::invalid_argument);
  EXPECT_NO_THROW(r.GetGauge("utf8_ok", "h", {{"a", "Grüße ✓"}}));
}

TEST(MetricsTest, RejectsBadBuckets) {
  MetricsRegistry r;
  EXPECT_THROW(r.GetHistogram("h", "h", {}, {2, 1}), std::invalid_argument);
  EXPECT_THROW(r.GetHistogram("h", "h", {}, {1, 1}), std::invalid_argument);
  EXPECT_THROW(r.GetHistogram("h", "h", {}, {1, std::nan("")}), std::invalid_argument);
  EXPECT_THROW(r.GetHistogram("h", "h", {}, {-std::numeric_limits<double>::infinity(), 1}),
               std::invalid_argument);
  // Only +Inf buckets is a valid (if dull) histogram.
  r.GetHistogram("h", "h", {}, {}).Observe(3);
  EXPECT_NE(r.Render().find("h_bucket{le=\"+Inf\"} 1\n"), std::string::npos);
}

TEST(MetricsTest, ConflictingRedefinitionIsALogicError) {
  MetricsRegistry r;
  r.GetCounter("x_total", "h", {{"a", "1"}});
  EXPECT_THROW(r.GetGauge("x_total", "h", {{"a", "1"}}), std::logic_error);
  EXPECT_THROW(r.GetCounter("x_total", "h", {{"b", "1"}}), std::logic_error);
  EXPECT_THROW(r.GetCounter("x_total", "h", {}), std::logic_error);
  EXPECT_THROW(r.GetCounter("x_total", "h", {{"a", "1"}, {"b", "2"}}), std::logic_error);

  r.GetHistogram("lat", "h", {}, {1, 2});
  EXPECT_THROW(r.GetHistogram("lat", "h", {}, {1, 3}), std::logic_error);
  // Sample names may not collide across families, in either order of creation.
  EXPECT_THROW(r.GetCounter("lat_count", "h", {}), std::logic_error);
  EXPECT_THROW(r.GetGauge("lat_bucket", "h", {}), std::logic_error);
  r.GetGauge("q_sum", "h", {});
  EXPECT_THROW(r.GetHistogram("q", "h", {}, {1}), std::logic_error);
  // A failed creation leaves nothing behind.
  EXPECT_EQ(r.Render().find("# TYPE q "), std::string::npos);
}

TEST(MetricsTest, BucketPresets) {
  std::vector<double> s = DefaultSecondsBuckets();
  ASSERT_GE(s.size(), 10u);
  EXPECT_EQ(s.front(), 50e-6);
  EXPECT_EQ(s.back(), 10);
  EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
  std::vector<double> c = CycleBuckets();
  ASSERT_EQ(c.size(), 25u);
  for (std::size_t i = 0; i < c.size(); ++i) EXPECT_EQ(c[i], std::ldexp(1.0, static_cast<int>(i)));
  MetricsRegistry r;
  EXPECT_NO_THROW(r.GetHistogram("a_seconds", "h", {}, s));
  EXPECT_NO_THROW(r.GetHistogram("b_cycles", "h", {}, c));
}

TEST(MetricsTest, ConcurrentUpdatesAreExact) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50000;
  static_assert(kPerThread % 8 == 0, "each thread observes 0..7 equally often");
  MetricsRegistry r;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&r, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Look up each time, as a request handler that does not cache would; half of the
        // two threads share each series, and new series get created while others are read.
        const std::string model = "m" + std::to_string(t % 2);
        r.GetCounter("requests_total", "h", {{"model", model}}).Inc();
        r.GetGauge("sum", "h", {}).Add(1);
        r.GetHistogram("cycles", "h", {{"model", model}}, CycleBuckets())
            .Observe(static_cast<double>(i % 8));
        if (i % 10000 == 0) (void)r.Render();
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const char* model : {"m0", "m1"}) {
    EXPECT_EQ(r.GetCounter("requests_total", "h", {{"model", model}}).Value(), 2 * kPerThread);
    Histogram& h = r.GetHistogram("cycles", "h", {{"model", model}}, CycleBuckets());
    EXPECT_EQ(h.Count(), 2u * kPerThread);
    EXPECT_EQ(h.Sum(), 2.0 * kPerThread / 8 * (0 + 1 + 2 + 3 + 4 + 5 + 6 + 7));
    // Values 0..7 in equal parts: le=1 holds 0 and 1; le=2 adds 2; le=4 adds 3,4; le=8 the rest.
    std::vector<std::uint64_t> cum = h.CumulativeCounts();
    const std::uint64_t eighth = 2u * kPerThread / 8;
    EXPECT_EQ(cum[0], 2 * eighth);
    EXPECT_EQ(cum[1], 3 * eighth);
    EXPECT_EQ(cum[2], 5 * eighth);
    EXPECT_EQ(cum[3], 8 * eighth);
    EXPECT_EQ(cum.back(), 8 * eighth);
  }
  EXPECT_EQ(r.GetGauge("sum", "h", {}).Value(), kThreads * kPerThread);
}

TEST(MetricsTest, RenderPassesPromtool) {
  MetricsRegistry r;
  r.GetCounter("fpgaserve_requests_total", "Inference requests.\nBy model \\ board.",
               {{"model", "bank\"note"}, {"board", "emu"}})
      .Inc(3);
  r.GetCounter("fpgaserve_requests_total", "", {{"model", "x\ny\\z"}, {"board", "sim"}}).Inc();
  r.GetGauge("fpgaserve_in_flight_requests", "Requests being processed.", {}).Set(2);
  r.GetGauge("fpgaserve_temperature_celsius", "Special values.", {{"case", "nan"}})
      .Set(std::nan(""));
  r.GetGauge("fpgaserve_temperature_celsius", "", {{"case", "inf"}})
      .Set(std::numeric_limits<double>::infinity());
  r.GetGauge("fpgaserve_temperature_celsius", "", {{"case", "-inf"}})
      .Set(-std::numeric_limits<double>::infinity());
  r.GetGauge("fpgaserve_temperature_celsius", "", {{"case", "tiny"}}).Set(1.5e-300);
  Histogram& lat = r.GetHistogram("fpgaserve_request_duration_seconds", "Latency.",
                                  {{"model", "m"}}, DefaultSecondsBuckets());
  for (double v : {3e-5, 0.002, 0.3, 42.0}) lat.Observe(v);
  Histogram& cyc = r.GetHistogram("fpgaserve_inference_cycles", "Cycles per inference.",
                                  {{"model", "m"}}, CycleBuckets());
  cyc.Observe(100);
  const std::string text = r.Render();

  SubprocessOptions options;
  options.stdin_data = text;
  options.timeout = std::chrono::seconds(60);
  Result<SubprocessResult> run = RunSubprocess({"promtool", "check", "metrics"}, options);
  if (!run.ok() && run.status().code() == StatusCode::kNotFound) {
    GTEST_SKIP() << "promtool is not on PATH (scripts/install-deps.sh installs package "
                    "'prometheus'): "
                 << run.status().ToString();
  }
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_TRUE(run->success()) << run->Describe() << "\nstdout:\n"
                              << run->stdout_text << "\nstderr:\n"
                              << run->stderr_text << "\ninput:\n"
                              << text;
}

}  // namespace
}  // namespace fpgaserve::serving
