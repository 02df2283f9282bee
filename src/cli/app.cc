#include "cli/app.h"

#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/model_loading.h"
#include "importers/import.h"
#include "core/version.h"

namespace fpgaserve::cli {

int ReportError(const Status& status, std::ostream& err) {
  err << "fpgaserve: error: " << status.message() << "\n";
  switch (status.code()) {
    case StatusCode::kInternal: return kExitInternal;
    default: return kExitBadInput;
  }
}

void AddModelFlags(CLI::App& cmd, ModelFlags& flags) {
  cmd.add_option("model", flags.path, "Model file (ONNX, Keras .json/.h5, neuralbond or native JSON)")
      ->required();
  cmd.add_option("--format", flags.format,
                 "Force the model format instead of detecting it: onnx|keras|neuralbond|native");
  cmd.add_option("--weights", flags.weights, "Keras: HDF5 weights for an architecture JSON");
}

Result<model::Graph> LoadModel(const ModelFlags& flags) {
  importers::ImportOptions options;
  if (!flags.format.empty()) {
    ASSIGN_OR_RETURN(auto f, importers::ParseModelFormat(flags.format));
    options.format = f;
  }
  options.weights_path = flags.weights;
  return importers::ImportModel(flags.path, options);
}

int RunApp(int argc, char** argv) {
  CLI::App app{"fpgaserve: trained neural networks to FPGA firmware, served through KServe"};
  app.set_version_flag("--version", std::string("fpgaserve ") + kVersion);
  app.require_subcommand(1);
  int exit_code = kExitOk;
  RegisterInspect(app, &exit_code);
  RegisterEval(app, &exit_code);
  RegisterConvert(app, &exit_code);
  RegisterCompile(app, &exit_code);
  RegisterPredict(app, &exit_code);
  RegisterBoards(app, &exit_code);
  RegisterServe(app, &exit_code);
  RegisterBuildServer(app, &exit_code);
  RegisterBuild(app, &exit_code);
  RegisterBoardServer(app, &exit_code);
  RegisterBoard(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "fpgaserve: error: " << e.what() << " (see --help)\n";
    return kExitBadInput;
  }
  return exit_code;
}

}  // namespace fpgaserve::cli
