#include "firmware/fit_plan.h"

#include <algorithm>
#include <cmath>

#include "core/text.h"

namespace fpgaserve::firmware {

namespace {

std::string Thousands(std::int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (v < 0 ? "-" : "") + out;
}

std::int64_t MaxReuse(const model::Layer& l) {
  return l.dense().in_features * l.dense().out_features;
}

Result<FitPlan> Plan(const model::Graph& g, const numeric::PrecisionConfig& p,
                     const boards::Board& b, const hw::HwOptions& o) {
  FitPlan plan;
  plan.options = o;
  ASSIGN_OR_RETURN(plan.design, hw::GenerateDesign(g, p, o));
  plan.estimate = hw::EstimateResources(g, p, plan.design, b.family);
  return plan;
}

// The smallest uniform reuse factor (powers of two) whose estimate fits, or 0.
int SuggestUniform(const model::Graph& g, const numeric::PrecisionConfig& p,
                   const boards::Board& b, int from) {
  std::int64_t largest = 1;
  for (const auto& l : g.layers) {
    if (l.kind == model::LayerKind::kDense) largest = std::max(largest, MaxReuse(l));
  }
  for (std::int64_t r = std::max(from, 1); r <= largest; r *= 2) {
    hw::HwOptions o;
    o.reuse = static_cast<int>(r);
    auto plan = Plan(g, p, b, o);
    if (plan.ok() && Overuse(plan->estimate, b).empty()) return static_cast<int>(r);
  }
  return 0;
}

}  // namespace

std::string Overuse(const hw::ResourceEstimate& e, const boards::Board& b) {
  std::vector<std::string> over;
  const auto& r = b.resources;
  if (r.lut >= 0 && e.lut > static_cast<std::int64_t>(std::floor(r.lut * kLutBudget))) {
    over.push_back(Thousands(e.lut) + " " + b.lut_kind + " (" + b.id + " has " +
                   Thousands(r.lut) + "; place & route needs <= " +
                   std::to_string(static_cast<int>(kLutBudget * 100)) + "%)");
  }
  if (r.ff >= 0 && e.ff > r.ff) over.push_back(Thousands(e.ff) + " FF (has " + Thousands(r.ff) + ")");
  if (r.dsp >= 0 && e.dsp > r.dsp) {
    over.push_back(Thousands(e.dsp) + " DSP (has " + Thousands(r.dsp) + ")");
  }
  if (r.bram >= 0 && e.bram > r.bram) {
    over.push_back(Thousands(e.bram) + " block RAM (has " + Thousands(r.bram) + ")");
  }
  return Join(over, ", ");
}

Result<FitPlan> PlanFit(const model::Graph& g, const numeric::PrecisionConfig& p,
                        const boards::Board& b, int reuse) {
  if (reuse < 0) return InvalidArgument("reuse factor " + std::to_string(reuse) + "; expected >= 1 or auto");
  if (reuse >= 1) {
    hw::HwOptions o;
    o.reuse = reuse;
    ASSIGN_OR_RETURN(FitPlan plan, Plan(g, p, b, o));
    const std::string over = Overuse(plan.estimate, b);
    if (over.empty()) return plan;
    const int suggest = SuggestUniform(g, p, b, reuse * 2);
    return FailedPrecondition("does not fit " + b.id + " at --reuse " + std::to_string(reuse) +
                              ": needs " + over +
                              (suggest ? "; try --reuse " + std::to_string(suggest) + " or auto"
                                       : "; no reuse factor makes it fit this board (estimate)"));
  }
  // Auto: every Dense layer starts fully parallel; while the estimate does not fit, the layer
  // with the largest DSP (then LUT) cost that can still share more doubles its factor.
  hw::HwOptions o;
  for (const auto& l : g.layers) {
    if (l.kind == model::LayerKind::kDense) o.layer_reuse[l.name] = 1;
  }
  ASSIGN_OR_RETURN(FitPlan plan, Plan(g, p, b, o));
  while (!Overuse(plan.estimate, b).empty()) {
    const hw::LayerEstimate* worst = nullptr;
    for (std::size_t k = 0; k < g.layers.size(); ++k) {
      const auto& l = g.layers[k];
      if (l.kind != model::LayerKind::kDense) continue;
      if (plan.design.layers[k].reuse >= MaxReuse(l)) continue;  // already one multiplier
      const auto& le = plan.estimate.layers[k];
      if (worst == nullptr || std::tie(le.dsp, le.lut) > std::tie(worst->dsp, worst->lut)) {
        worst = &le;
      }
    }
    if (worst == nullptr) {
      return FailedPrecondition("does not fit " + b.id + " with --reuse auto: the smallest design " +
                                "(every layer on one multiplier) still needs " +
                                Overuse(plan.estimate, b));
    }
    int& r = o.layer_reuse[worst->name];
    r = static_cast<int>(std::min<std::int64_t>(
        std::int64_t{r} * 2, MaxReuse(*std::find_if(g.layers.begin(), g.layers.end(),
                                                    [&](const model::Layer& l) { return l.name == worst->name; }))));
    ASSIGN_OR_RETURN(plan, Plan(g, p, b, o));
  }
  return plan;
}

}  // namespace fpgaserve::firmware
