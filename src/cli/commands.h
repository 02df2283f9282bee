// Registration of each subcommand with the CLI11 application; one file per subcommand.
// Each Register* adds its flags and sets a callback that stores the exit code in *exit_code.
#pragma once

#include <CLI/CLI.hpp>

namespace fpgaserve::cli {

void RegisterInspect(CLI::App& app, int* exit_code);
void RegisterEval(CLI::App& app, int* exit_code);
void RegisterConvert(CLI::App& app, int* exit_code);
void RegisterCompile(CLI::App& app, int* exit_code);
void RegisterPredict(CLI::App& app, int* exit_code);
void RegisterBoards(CLI::App& app, int* exit_code);
void RegisterServe(CLI::App& app, int* exit_code);
void RegisterBuildServer(CLI::App& app, int* exit_code);
void RegisterBuild(CLI::App& app, int* exit_code);
void RegisterBoardServer(CLI::App& app, int* exit_code);
void RegisterBoard(CLI::App& app, int* exit_code);

// Flags shared by every command that reads a model: --format and --weights.
struct ModelFlags {
  std::string path;
  std::string format;
  std::string weights;
};
void AddModelFlags(CLI::App& cmd, ModelFlags& flags);

}  // namespace fpgaserve::cli
