// float_unit_emit: prints one generated floating-point unit's Verilog as module `fp_unit`, or its
// largest stage count — for bench/f8_bench.sh's pipeline-depth table.
//   float_unit_emit add|sub|mul|div|exp FORMAT STAGES
//   float_unit_emit max add|sub|mul|div|exp FORMAT
#include <iostream>
#include <string>

#include "hw/float_units.h"
#include "numeric/float_format.h"

int main(int argc, char** argv) {
  using namespace fpgaserve;
  const bool max = argc == 4 && std::string(argv[1]) == "max";
  if (argc != 4) {
    std::cerr << "usage: float_unit_emit add|sub|mul|div|exp FORMAT STAGES | max OP FORMAT\n";
    return 2;
  }
  const std::string op = argv[max ? 2 : 1];
  auto f = numeric::ParseFloatFormat(argv[max ? 3 : 2]);
  if (!f.ok()) {
    std::cerr << "float_unit_emit: " << f.status().ToString() << "\n";
    return 2;
  }
  if (max) {
    std::cout << (op == "mul"   ? hw::FloatMulMaxStages()
                  : op == "div" ? hw::FloatDivMaxStages(*f)
                  : op == "exp" ? hw::FloatExpMaxStages(*f)
                                : hw::FloatAddMaxStages())
              << "\n";
    return 0;
  }
  const int stages = std::atoi(argv[3]);
  Result<hw::FloatUnit> u = op == "mul"   ? hw::EmitFloatMul("fp_unit", *f, stages)
                            : op == "div" ? hw::EmitFloatDiv("fp_unit", *f, stages)
                            : op == "exp" ? hw::EmitFloatExp("fp_unit", *f, stages)
                                          : hw::EmitFloatAdd("fp_unit", *f, stages, op == "sub");
  if (!u.ok()) {
    std::cerr << "float_unit_emit: " << u.status().ToString() << "\n";
    return 2;
  }
  std::cout << u->text;
  return 0;
}
