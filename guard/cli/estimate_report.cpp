#include "estimate_report.hpp"

#include <cmath>

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <fmt/ranges.h>

#include "oomguard/error.hpp"

namespace oomguard::cli {
namespace {

std::string grouped(std::int64_t n) {
  const std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

// A report is printed in one pair of units chosen by its peak: GB and GiB
// for what a GPU holds, MB and MiB for a small model, which in GB read
// "0.02 GB" beside "0.00 GB" terms.
struct Units {
  double decimal = 1e9;
  const char* decimal_name = "GB";
  double binary = 1024.0 * 1024 * 1024;
  const char* binary_name = "GiB";
};

Units units_for(double peak_bytes) {
  if (peak_bytes >= 1e9) return {};
  return {1e6, "MB", 1024.0 * 1024, "MiB"};
}

std::string decimal(double bytes, const Units& u) { return fmt::format("{:.2f} {}", bytes / u.decimal, u.decimal_name); }
std::string binary(double bytes, const Units& u) { return fmt::format("{:.2f} {}", bytes / u.binary, u.binary_name); }
// A difference (headroom, shortfall) in the decimal unit that shows it:
// never "0.00 GB" for 4 MB.
std::string amount(double bytes) {
  const double size = std::abs(bytes);
  if (size >= 1e9) return fmt::format("{:.2f} GB", bytes / 1e9);
  if (size >= 1e6) return fmt::format("{:.2f} MB", bytes / 1e6);
  if (size >= 1e3) return fmt::format("{:.2f} kB", bytes / 1e3);
  return fmt::format("{:.0f} B", bytes);
}

// The share of the device, never rounded up to 100% for a run that fits
// with a sliver left.
std::string share(double peak, double total) {
  const double percent = 100 * peak / total;
  if (peak <= total && percent > 99.9) return ">99.9%";
  return fmt::format("{:.1f}%", percent);
}

std::string describe(const guard::TrainingSetup& s) {
  std::string method = s.method == guard::Method::full ? "full fine-tune"
                                                         : fmt::format("{} r={} on {}", guard::name(s.method), s.lora_r,
                                                                       fmt::join(s.lora_targets, ","));
  return fmt::format("{}, {}{}, {}, batch {} x {} tokens, grad-accum {}, {} attention{}, {} GPU{}{}", method,
                     guard::name(s.dtype), s.mixed_precision ? " + fp32 master weights" : (s.amp ? " autocast of fp32 weights" : ""),
                     guard::name(s.optimizer), s.batch_size, s.seq_len, s.grad_accum, guard::name(s.attention),
                     s.gradient_checkpointing ? ", gradient checkpointing" : "", s.world_size, s.world_size == 1 ? "" : "s",
                     s.sharding == guard::Sharding::none ? "" : fmt::format(", ZeRO {}", guard::name(s.sharding)));
}

}  // namespace

void print_estimate(std::ostream& out, const guard::Estimate& e, const ReportContext& ctx) {
  const Units u = units_for(e.peak_bytes);
  auto gb = [&u](double bytes) { return decimal(bytes, u); };
  auto gib = [&u](double bytes) { return binary(bytes, u); };
  fmt::print(out, "model   {}: {} parameters, {} trainable\n", ctx.model_name, grouped(e.parameters),
             grouped(e.trainable_parameters));
  fmt::print(out, "setup   {}\n\n", describe(ctx.options->setup));
  fmt::print(out, "{:<26} {:<12} {:>12} {:>12}\n", "component", "category", u.decimal_name, u.binary_name);
  for (const auto& c : e.components) {
    if (c.bytes == 0) continue;
    fmt::print(out, "{:<26} {:<12} {:>12} {:>12}\n", c.name, name(c.category), gb(c.bytes), gib(c.bytes));
  }
  fmt::print(out, "{:<26} {:<12} {:>12} {:>12}\n", "cuda_context", "non_torch", gb(e.cuda_context_bytes),
             gib(e.cuda_context_bytes));
  fmt::print(out, "\nalive per phase (tensors):\n");
  for (const auto& p : e.phases)
    fmt::print(out, "  {:<16} {:>12}{}\n", p.phase, gb(p.tensor_bytes()), &p == &e.peak() ? "  <- peak" : "");
  const double tensors = e.peak().tensor_bytes();
  fmt::print(out, "\npeak    {} = {} tensors ({}) + {} allocator slack + {} CUDA context  ({})\n", gb(e.peak_bytes),
             gb(tensors), e.peak().phase, gb(e.allocator_slack_bytes), gb(e.cuda_context_bytes), gib(e.peak_bytes));
  if (e.fits) {
    const auto& o = *ctx.options;
    const std::string device = o.gpu_name.empty() ? std::string("the device") : o.gpu_name;
    const double total = static_cast<double>(o.gpu_memory_bytes);
    if (*e.fits)
      fmt::print(out, "fits    yes: {} of {} on {} ({}), headroom {}\n", gb(e.peak_bytes), decimal(total, units_for(total)),
                 device, share(e.peak_bytes, total), amount(e.headroom_bytes));
    else
      fmt::print(out, "fits    NO: {} needed, {} on {}, short by {} (try --fit)\n", gb(e.peak_bytes),
                 decimal(total, units_for(total)), device, amount(-e.headroom_bytes));
  }
  if (ctx.show_naive) {
    const auto naive = guard::naive_estimate(*ctx.spec, ctx.options->setup);
    fmt::print(out,
               "\nnaive   fp16 weights {} + fp32 AdamW moments {} + b*s*h*L*2 activations {} = {};\n"
               "        it leaves out gradients, the optimizer-step temporary, most activations and the logits "
               "(see docs/estimator.md)\n",
               gb(naive.weights), gb(naive.optimizer), gb(naive.activations), gb(naive.total()));
  }
}

void print_fit(std::ostream& out, const std::vector<guard::FitCandidate>& fits, const ReportContext& ctx) {
  if (fits.empty()) {
    fmt::print(out, "\nno searched configuration fits {}; add GPUs (--world-size with --zero 3) or shorten --seq-len\n",
               ctx.options->gpu_name.empty() ? "the device" : ctx.options->gpu_name);
    return;
  }
  fmt::print(out, "\nconfigurations that fit, fastest first (speed relative to the given setup, a heuristic):\n");
  fmt::print(out, "{:>3} {:>7} {:>11} {:>11}  {}\n", "#", "speed", "peak", "headroom", "changes");
  int rank = 1;
  for (const auto& c : fits) {
    const std::string changes = c.changes.empty() ? std::string("(as given)") : fmt::format("{}", fmt::join(c.changes, ", "));
    fmt::print(out, "{:>3} {:>6.2f}x {:>11} {:>11}  {}\n", rank++, c.relative_speed,
               decimal(c.estimate.peak_bytes, units_for(c.estimate.peak_bytes)), amount(c.estimate.headroom_bytes),
               changes);
  }
}

}  // namespace oomguard::cli
