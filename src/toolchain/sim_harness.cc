#include <string>

#include "toolchain/sim_core.h"

namespace fpgaserve::toolchain {

namespace {

// The design-independent part of the harness. Only the constants in front of it vary per design;
// Verilator picks the C type of each port from its width, and the Store/Load overloads below
// accept every one of them (CData, SData, IData, QData, VlWide<N>).
constexpr const char* kHarnessBody = R"CPP(
  constexpr int kInBits = kInputs * kInWidth;
  constexpr int kOutBits = kOutputs * kOutWidth;
  constexpr int kInWords = (kInBits + 31) / 32 < 2 ? 2 : (kInBits + 31) / 32;
  constexpr int kOutWords = (kOutBits + 31) / 32 < 2 ? 2 : (kOutBits + 31) / 32;
  // A batch fails when no output appears for this many cycles: the core is stuck.
  constexpr long long kStallLimit = kLatency + kInterval + 1000;

  struct Sim {
    VerilatedContext context;
    Vfpgaserve_core* core = nullptr;
  };

  inline void Store(CData& port, const std::uint32_t* w) { port = static_cast<CData>(w[0]); }
  inline void Store(SData& port, const std::uint32_t* w) { port = static_cast<SData>(w[0]); }
  inline void Store(IData& port, const std::uint32_t* w) { port = w[0]; }
  inline void Store(QData& port, const std::uint32_t* w) { port = (QData{w[1]} << 32) | w[0]; }
  template <std::size_t N>
  inline void Store(VlWide<N>& port, const std::uint32_t* w) {
    for (std::size_t i = 0; i < N; ++i) port.data()[i] = w[i];
  }
  inline void Load(const CData& port, std::uint32_t* w) { w[0] = port; }
  inline void Load(const SData& port, std::uint32_t* w) { w[0] = port; }
  inline void Load(const IData& port, std::uint32_t* w) { w[0] = port; }
  inline void Load(const QData& port, std::uint32_t* w) {
    w[0] = static_cast<std::uint32_t>(port);
    w[1] = static_cast<std::uint32_t>(port >> 32);
  }
  template <std::size_t N>
  inline void Load(const VlWide<N>& port, std::uint32_t* w) {
    for (std::size_t i = 0; i < N; ++i) w[i] = port.data()[i];
  }

  inline std::uint64_t LowMask(int bits) {
    return bits >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits) - 1;
  }

  // Element i of a vector port occupies bits [i*width +: width] (the port contract).
  inline void PutBits(std::uint32_t* words, int offset, std::uint64_t v, int width) {
    for (int done = 0; done < width;) {
      const int bit = offset + done;
      const int shift = bit % 32;
      const int take = std::min(32 - shift, width - done);
      const auto chunk = static_cast<std::uint32_t>((v >> done) & LowMask(take));
      words[bit / 32] |= chunk << shift;
      done += take;
    }
  }

  inline std::uint64_t GetBits(const std::uint32_t* words, int offset, int width) {
    std::uint64_t v = 0;
    for (int done = 0; done < width;) {
      const int bit = offset + done;
      const int shift = bit % 32;
      const int take = std::min(32 - shift, width - done);
      v |= (static_cast<std::uint64_t>(words[bit / 32] >> shift) & LowMask(take)) << done;
      done += take;
    }
    return v;
  }

  inline long long ToRaw(std::uint64_t bits) {
    if (kOutSigned && kOutWidth < 64 && ((bits >> (kOutWidth - 1)) & 1)) bits |= ~LowMask(kOutWidth);
    return static_cast<long long>(bits);
  }

  void Tick(Vfpgaserve_core& c) {
    c.clk = 1;
    c.eval();
    c.clk = 0;
    c.eval();
  }

  }  // namespace

  extern "C" {

  void fs_reset(void* handle) {
    Vfpgaserve_core& c = *static_cast<Sim*>(handle)->core;
    c.rst = 1;
    c.in_valid = 0;
    c.out_ready = 1;
    c.clk = 0;
    c.eval();
    for (int i = 0; i < 4; ++i) Tick(c);
    c.rst = 0;
    c.eval();
  }

  void* fs_open() {
    try {
      auto* sim = new Sim;
      sim->context.randReset(0);  // deterministic: every register starts at zero before reset
      sim->core = new Vfpgaserve_core(&sim->context, "core");
      fs_reset(sim);
      return sim;
    } catch (...) {
      return nullptr;
    }
  }

  int fs_info(void* handle, int* n_in, int* n_out, int* in_width, int* out_width) {
    if (handle == nullptr) return -1;
    *n_in = kInputs;
    *n_out = kOutputs;
    *in_width = kInWidth;
    *out_width = kOutWidth;
    return 0;
  }

  // Streams rows through the core at full rate and returns the cycles from the first input
  // handshake to the last output handshake (latency + (rows-1)*II for a stall-free pipeline),
  // or -1 when the core stops producing outputs.
  long long fs_infer(void* handle, const long long* in, long long rows, long long* out,
                     unsigned long long* latency_cycles) {
    if (handle == nullptr || rows < 0) return -1;
    if (rows == 0) return 0;
    Vfpgaserve_core& c = *static_cast<Sim*>(handle)->core;
    std::uint32_t in_words[kInWords];
    std::uint32_t out_words[kOutWords];
    long long sent = 0, received = 0, staged = -1;
    long long cycle = 0, first_in = -1, last_out = -1, idle = 0;
    c.out_ready = 1;
    while (received < rows) {
      const bool have_input = sent < rows;
      c.in_valid = have_input ? 1 : 0;
      if (have_input && staged != sent) {
        std::memset(in_words, 0, sizeof(in_words));
        const long long* row = in + sent * kInputs;
        for (int i = 0; i < kInputs; ++i) {
          PutBits(in_words, i * kInWidth, static_cast<std::uint64_t>(row[i]), kInWidth);
        }
        Store(c.in_data, in_words);
        staged = sent;
      }
      c.eval();  // settle combinational ready/valid for this cycle's inputs
      const bool in_fire = have_input && c.in_ready;
      const bool out_fire = c.out_valid;
      if (out_fire) {
        Load(c.out_data, out_words);
        long long* dst = out + received * kOutputs;
        for (int i = 0; i < kOutputs; ++i)
          dst[i] = ToRaw(GetBits(out_words, i * kOutWidth, kOutWidth));
        if (latency_cycles != nullptr) latency_cycles[received] = c.out_cycles;
        ++received;
        last_out = cycle;
        idle = 0;
      } else if (++idle > kStallLimit) {
        return -1;
      }
      if (in_fire) {
        if (first_in < 0) first_in = cycle;
        ++sent;
      }
      Tick(c);
      ++cycle;
    }
    c.in_valid = 0;
    c.eval();
    return last_out - first_in;
  }

  unsigned long long fs_cycles(void* handle) {
    return handle == nullptr ? 0 : static_cast<Sim*>(handle)->core->cycle_count;
  }

  void fs_close(void* handle) {
    if (handle == nullptr) return;
    auto* sim = static_cast<Sim*>(handle);
    sim->core->final();
    delete sim->core;
    delete sim;
  }

  }  // extern "C"
)CPP";

}  // namespace

std::string GenerateSimHarness(const SimCoreSpec& spec) {
  std::string s;
  s += "// Generated by fpgaserve: the simulated board's C ABI around the Verilated "
       "fpgaserve_core.\n";
  s += "// Streams batches through the core at its initiation interval; do not edit.\n";
  s += "#include <algorithm>\n#include <cstdint>\n#include <cstring>\n\n";
  s += "#include \"Vfpgaserve_core.h\"\n#include \"verilated.h\"\n\n";
  s += "namespace {\n\n";
  s += "constexpr int kInputs = " + std::to_string(spec.n_in) + ";\n";
  s += "constexpr int kOutputs = " + std::to_string(spec.n_out) + ";\n";
  s += "constexpr int kInWidth = " + std::to_string(spec.in_width) + ";\n";
  s += "constexpr int kOutWidth = " + std::to_string(spec.out_width) + ";\n";
  s += std::string("constexpr bool kOutSigned = ") + (spec.out_signed ? "true" : "false") + ";\n";
  s += "constexpr long long kLatency = " + std::to_string(spec.latency_cycles) + ";\n";
  s += "constexpr long long kInterval = " + std::to_string(spec.initiation_interval) + ";\n";
  s += kHarnessBody;
  return s;
}

}  // namespace fpgaserve::toolchain
