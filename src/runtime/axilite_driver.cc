#include "runtime/axilite_driver.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "core/text.h"
#include "hw/wrappers.h"
#include "runtime/batch_validation.h"

namespace fpgaserve::runtime {
namespace {

using Clock = std::chrono::steady_clock;

// Far beyond any model that fits a card's AXI4-Lite window; keeps register arithmetic in range.
constexpr std::int64_t kMaxElements = 1 << 20;

std::string Hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// A register's 32 bits, all eight digits.
std::string Word(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

std::string ControlText(std::uint32_t c) {
  std::string s = Hex(c);
  std::vector<std::string> bits;
  if (c & 2u) bits.push_back("done");
  if (c & 4u) bits.push_back("busy");
  return s + (bits.empty() ? ": neither busy nor done" : ": " + Join(bits, ", "));
}

}  // namespace


// --- The register protocol -----------------------------------------------------------------

namespace axilite {

// The raw value of an output register: the word must be the sign extension (fixed) or zero
// extension (ufixed, float bit patterns) of its low `width` bits.
bool DecodeOutputWord(std::uint32_t word, const numeric::NumberFormat& f, numeric::RawValue* out) {
  const int w = f.width();
  const std::uint64_t mask = w >= 32 ? 0xffffffffULL : (std::uint64_t{1} << w) - 1;
  const std::uint64_t low = word & mask;
  std::int64_t v = static_cast<std::int64_t>(low);
  if (f.raw_is_signed() && ((low >> (w - 1)) & 1u) != 0) v -= static_cast<std::int64_t>(mask) + 1;
  *out = v;
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(v)) == word;
}

Status CheckRegisterShape(const std::string& who, const firmware::BundleMetadata& m) {
  if (m.n_inputs < 1 || m.n_outputs < 1 || m.n_inputs > kMaxElements ||
      m.n_outputs > kMaxElements) {
    return FailedPrecondition(who + ": the bundle's n_inputs " + std::to_string(m.n_inputs) +
                              " / n_outputs " + std::to_string(m.n_outputs) +
                              " do not fit the AXI4-Lite register map (1.." +
                              std::to_string(kMaxElements) + " each)");
  }
  for (const auto* f : {&m.input_format, &m.output_format}) {
    if (f->width() < 1 || f->width() > 32) {
      return FailedPrecondition(who + ": the bundle's " +
                                (f == &m.input_format ? "input" : "output") + " format " +
                                f->ToString() + " is " + std::to_string(f->width()) +
                                " bits wide; the AXI4-Lite registers hold 1..32-bit elements");
    }
  }
  return Status::Ok();
}


std::uint64_t RegisterWindowBytes(std::int64_t n_in, std::int64_t n_out) {
  const std::int64_t in = std::clamp<std::int64_t>(n_in, 1, kMaxElements);
  const std::int64_t out = std::clamp<std::int64_t>(n_out, 1, kMaxElements);
  const std::uint64_t inputs_end = hw::kInputBase + 4 * static_cast<std::uint64_t>(in);
  const std::uint64_t outputs_end =
      hw::AxiLiteOutputBase(static_cast<int>(in)) + 4 * static_cast<std::uint64_t>(out);
  return std::max(inputs_end, outputs_end);
}

namespace {

class RegisterDriver : public BoardDriver {
 public:
  RegisterDriver(std::string kind, firmware::BundleMetadata m, std::unique_ptr<RegisterPort> port,
                 const Timing& timing, std::uint32_t out_base)
      : kind_(std::move(kind)),
        m_(std::move(m)),
        port_(std::move(port)),
        timing_(timing),
        out_base_(out_base),
        where_(kind_ + " on " + port_->Name()) {}

  std::string kind() const override { return kind_; }

  Result<BatchResult> Infer(const numeric::RawBatch& inputs) override {
    RETURN_IF_ERROR(ValidateInputBatch(inputs, m_));
    std::lock_guard<std::mutex> lock(mu_);  // one register window, one inference at a time
    if (!idle_) RETURN_IF_ERROR(WaitIdle("before the batch"));
    BatchResult r;
    r.outputs.rows = inputs.rows;
    r.outputs.features = static_cast<std::size_t>(m_.n_outputs);
    // Grows past this as rows arrive: a batch's size is bounded by its inputs, not its outputs.
    r.outputs.values.reserve(std::min<std::size_t>(inputs.rows * r.outputs.features, 1 << 22));
    r.latency_cycles.reserve(inputs.rows);
    for (std::size_t i = 0; i < inputs.rows; ++i) {
      Status st = RunRow(inputs, i, r);
      if (!st.ok()) {
        idle_ = false;  // the core may still be running this row
        return Status(st.code(), where_ + ": row " + std::to_string(i) + " of " +
                                     std::to_string(inputs.rows) + ": " + st.message());
      }
    }
    return r;
  }

  // Waits until control shows the core is not busy (start is ignored while busy).
  Status WaitIdle(const std::string& when) {
    const auto deadline = Clock::now() + timing_.row_timeout;
    std::uint32_t control = 0;
    for (long polls = 0;; ++polls) {
      auto read = port_->Read(hw::kRegControl);
      if (!read.ok()) {
        return Status(read.status().code(), where_ + ": " + when + ": " + read.status().message());
      }
      control = *read;
      if ((control & 4u) == 0) {
        idle_ = true;
        return Status::Ok();
      }
      if (Clock::now() >= deadline) {
        return DeadlineExceeded(where_ + ": the core stays busy for " +
                                std::to_string(timing_.row_timeout.count()) + " ms " + when +
                                " (control " + ControlText(control) + ")");
      }
      Pause(polls);
    }
  }

 private:
  void Pause(long polls) const {
    if (polls >= timing_.spin_polls && timing_.poll_sleep.count() > 0) {
      std::this_thread::sleep_for(timing_.poll_sleep);
    }
  }

  Status RunRow(const numeric::RawBatch& inputs, std::size_t row, BatchResult& r) {
    const std::size_t n_in = inputs.features;
    for (std::size_t k = 0; k < n_in; ++k) {
      const numeric::RawValue v = inputs.values[row * n_in + k];
      // Two's complement low 32 bits: the core keeps the low in_width bits.
      RETURN_IF_ERROR(port_->Write(hw::kInputBase + 4 * static_cast<std::uint32_t>(k),
                                   static_cast<std::uint32_t>(static_cast<std::uint64_t>(v))));
    }
    RETURN_IF_ERROR(port_->Write(hw::kRegControl, 1u));
    const auto deadline = Clock::now() + timing_.row_timeout;
    std::uint32_t control = 0;
    for (long polls = 0;; ++polls) {
      ASSIGN_OR_RETURN(control, port_->Read(hw::kRegControl));
      if (control & 2u) break;
      // Neither busy nor done: the core ignored the start or was reset — unless the start bit
      // still reads back, which a register file that models the core (the zynq fakes) shows
      // until its model has taken the write; the deadline bounds that wait.
      if ((control & 4u) == 0 && (control & 1u) == 0) {
        // A taken start sets busy until done: the core ignored it or was reset.
        return Internal("after start the control register reads " + ControlText(control) +
                        " (the start was not taken: was the card reset?)");
      }
      if (Clock::now() >= deadline) {
        return DeadlineExceeded("the core did not set done within " +
                                std::to_string(timing_.row_timeout.count()) +
                                " ms (control register 0x00 reads " + ControlText(control) + ")");
      }
      Pause(polls);
    }
    const std::size_t n_out = static_cast<std::size_t>(m_.n_outputs);
    for (std::size_t j = 0; j < n_out; ++j) {
      const std::uint32_t offset = out_base_ + 4 * static_cast<std::uint32_t>(j);
      ASSIGN_OR_RETURN(std::uint32_t word, port_->Read(offset));
      numeric::RawValue v = 0;
      if (!DecodeOutputWord(word, m_.output_format, &v)) {
        return Internal("output " + std::to_string(j) + " (register " + Hex(offset) + ") reads " +
                        Word(word) + ", which is not a " +
                        (m_.output_format.raw_is_signed() ? "sign" : "zero") + "-extended " +
                        m_.output_format.ToString() + " value");
      }
      r.outputs.values.push_back(v);
    }
    ASSIGN_OR_RETURN(std::uint32_t lo, port_->Read(hw::kRegCyclesLow));
    ASSIGN_OR_RETURN(std::uint32_t hi, port_->Read(hw::kRegCyclesHigh));
    const std::uint64_t cycles = (static_cast<std::uint64_t>(hi) << 32) | lo;
    r.latency_cycles.push_back(cycles);
    r.total_cycles += cycles;  // rows run one after another through the registers
    return Status::Ok();
  }

  std::string kind_;
  firmware::BundleMetadata m_;
  std::unique_ptr<RegisterPort> port_;
  Timing timing_;
  std::uint32_t out_base_;
  std::string where_;
  bool idle_ = false;
  std::mutex mu_;
};

}  // namespace

Result<std::unique_ptr<BoardDriver>> OpenRegisterDriver(const std::string& kind,
                                                        const firmware::BundleMetadata& m,
                                                        std::unique_ptr<RegisterPort> port,
                                                        const Timing& timing) {
  if (port == nullptr) return InvalidArgument(kind + ": no register port");
  if (timing.row_timeout.count() <= 0 || timing.spin_polls < 0 || timing.poll_sleep.count() < 0) {
    return InvalidArgument(kind + ": row timeout " + std::to_string(timing.row_timeout.count()) +
                           " ms, spin polls " + std::to_string(timing.spin_polls) +
                           ", poll sleep " + std::to_string(timing.poll_sleep.count()) +
                           " us; expected a positive timeout and non-negative polling");
  }
  RETURN_IF_ERROR(CheckRegisterShape(kind, m));
  const std::string where = kind + " on " + port->Name();
  std::uint32_t id[3] = {0, 0, 0};  // n_in, n_out, OUT_BASE
  const std::uint32_t id_regs[3] = {hw::kRegInputs, hw::kRegOutputs, hw::kRegOutputBase};
  for (int i = 0; i < 3; ++i) {
    auto read = port->Read(id_regs[i]);
    if (!read.ok()) {
      return Status(read.status().code(),
                    where + ": reading the core's identity registers: " + read.status().message());
    }
    id[i] = *read;
  }
  const std::uint32_t n_in = id[0], n_out = id[1], out_base = id[2];
  const std::uint32_t want_base = hw::AxiLiteOutputBase(static_cast<int>(m.n_inputs));
  if (n_in != static_cast<std::uint64_t>(m.n_inputs) ||
      n_out != static_cast<std::uint64_t>(m.n_outputs) || out_base != want_base) {
    return FailedPrecondition(
        where + ": the card holds other firmware: its registers report n_in " +
        std::to_string(n_in) + ", n_out " + std::to_string(n_out) + ", OUT_BASE " + Hex(out_base) +
        "; the bundle has n_in " + std::to_string(m.n_inputs) + ", n_out " +
        std::to_string(m.n_outputs) + ", OUT_BASE " + Hex(want_base));
  }
  auto driver = std::make_unique<RegisterDriver>(kind, m, std::move(port), timing, out_base);
  RETURN_IF_ERROR(driver->WaitIdle("when the driver opens"));
  return std::unique_ptr<BoardDriver>(std::move(driver));
}

}  // namespace axilite


}  // namespace fpgaserve::runtime
