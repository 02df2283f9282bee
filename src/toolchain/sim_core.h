// What the simulated board needs to know about a core: its Verilog sources and port layout.
// Kept free of hw/ types so the toolchain depends on core/ only (firmware/ converts an HwDesign).
#pragma once

#include <string>
#include <vector>

namespace fpgaserve::toolchain {

struct SourceFile {
  std::string name;  // "fpgaserve_core.v"; a plain file name, no directories
  std::string text;
};

// A core obeying the `fpgaserve_core` port contract (src/hw/design.h, docs/hardware.md).
struct SimCoreSpec {
  std::vector<SourceFile> verilog;
  int n_in = 0;
  int n_out = 0;
  int in_width = 0;   // bits per input element
  int out_width = 0;  // bits per output element
  bool out_signed = true;
  int latency_cycles = 0;
  int initiation_interval = 1;
};

// The C++ source of the harness: a C ABI (fs_open, fs_reset, fs_info, fs_infer, fs_cycles,
// fs_close) around the Verilated model, specialised to the spec's port widths.
std::string GenerateSimHarness(const SimCoreSpec& spec);

}  // namespace fpgaserve::toolchain
