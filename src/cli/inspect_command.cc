// `fpgaserve inspect MODEL [--json]`: what a model file contains, as the IR sees it.
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/app.h"
#include "cli/commands.h"
#include "cli/model_loading.h"
#include "model/graph.h"

namespace fpgaserve::cli {

namespace {

using J = nlohmann::ordered_json;

J TensorsJson(const std::vector<model::TensorSpec>& ts) {
  J arr = J::array();
  for (const auto& t : ts) {
    // Shapes carry the batch dimension as -1, as KServe V2 model metadata does.
    std::vector<std::int64_t> shape{-1};
    shape.insert(shape.end(), t.shape.begin(), t.shape.end());
    arr.push_back(J{{"name", t.name}, {"shape", shape}, {"datatype", model::DataTypeName(t.dtype)}});
  }
  return arr;
}

std::int64_t TotalElements(const std::vector<model::TensorSpec>& ts) {
  std::int64_t n = 0;
  for (const auto& t : ts) n += model::ElementCount(t.shape);
  return n;
}

J InspectJson(const model::Graph& g) {
  J layers = J::array();
  for (const auto& l : g.layers) {
    J j{{"name", l.name}, {"op", l.OpName()}, {"inputs", l.inputs}, {"outputs", l.outputs},
        {"parameters", l.ParameterCount()}};
    if (l.kind == model::LayerKind::kDense) {
      j["in_features"] = l.dense().in_features;
      j["out_features"] = l.dense().out_features;
    }
    if (l.kind == model::LayerKind::kActivation &&
        l.activation().kind == model::ActivationKind::kLeakyReLU) {
      j["alpha"] = l.activation().alpha;
    }
    layers.push_back(std::move(j));
  }
  return J{{"name", g.name},
           {"format", g.source_format},
           {"inputs", TensorsJson(g.inputs)},
           {"outputs", TensorsJson(g.outputs)},
           {"n_inputs", TotalElements(g.inputs)},
           {"n_outputs", TotalElements(g.outputs)},
           {"layers", std::move(layers)},
           {"parameters", g.ParameterCount()}};
}

void PrintText(const model::Graph& g, std::ostream& out) {
  out << "model " << (g.name.empty() ? "(unnamed)" : g.name) << " (" << g.source_format << "), "
      << g.ParameterCount() << " parameters\n";
  for (const auto& t : g.inputs) {
    out << "  input  " << t.name << " " << model::ShapeToString(t.shape) << " "
        << model::DataTypeName(t.dtype) << "\n";
  }
  for (const auto& l : g.layers) {
    out << "  layer  " << l.name << ": " << l.OpName();
    if (l.kind == model::LayerKind::kDense) {
      out << " " << l.dense().in_features << " -> " << l.dense().out_features;
    }
    out << "  (" << l.inputs[0] << " -> " << l.outputs[0] << ")\n";
  }
  for (const auto& t : g.outputs) {
    out << "  output " << t.name << " " << model::ShapeToString(t.shape) << "\n";
  }
}

}  // namespace

void RegisterInspect(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("inspect", "Show a model's inputs, outputs and layers");
  auto flags = std::make_shared<ModelFlags>();
  auto json = std::make_shared<bool>(false);
  AddModelFlags(*cmd, *flags);
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->callback([flags, json, exit_code] {
    auto graph = LoadModel(*flags);
    if (!graph.ok()) {
      *exit_code = ReportError(graph.status(), std::cerr);
      return;
    }
    if (*json) {
      std::cout << InspectJson(*graph).dump(2) << "\n";
    } else {
      PrintText(*graph, std::cout);
    }
  });
}

}  // namespace fpgaserve::cli
