// `fpgaserve convert MODEL --to neuralbond|native -o FILE`: write a model in another format.
#include <iostream>

#include "cli/app.h"
#include "cli/commands.h"
#include "cli/model_loading.h"
#include "core/file_io.h"
#include "importers/import.h"

namespace fpgaserve::cli {

namespace {

struct ConvertFlags {
  ModelFlags model;
  std::string to;
  std::string output;
};

Status Convert(const ConvertFlags& f) {
  ASSIGN_OR_RETURN(model::Graph graph, LoadModel(f.model));
  std::string text;
  if (f.to == "neuralbond") {
    auto exported = importers::ExportNeuralbond(graph);
    if (!exported.ok()) return exported.status().WithContext(f.model.path);
    text = std::move(exported).value();
  } else if (f.to == "native") {
    text = importers::ExportNative(graph);
  } else {
    return InvalidArgument("--to " + f.to + ": expected neuralbond or native");
  }
  if (f.output.empty() || f.output == "-") {
    std::cout << text;
    return Status::Ok();
  }
  return WriteFileAtomic(f.output, text);
}

}  // namespace

void RegisterConvert(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("convert", "Write a model as neuralbond or native JSON");
  auto f = std::make_shared<ConvertFlags>();
  AddModelFlags(*cmd, f->model);
  cmd->add_option("--to", f->to, "Target format: neuralbond|native")->required();
  cmd->add_option("-o,--output", f->output, "Output file (default: standard output)");
  cmd->callback([f, exit_code] {
    Status st = Convert(*f);
    if (!st.ok()) *exit_code = ReportError(st, std::cerr);
  });
}

}  // namespace fpgaserve::cli
