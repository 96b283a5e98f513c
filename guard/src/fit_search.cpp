#include "oomguard/guard/fit_search.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "oomguard/error.hpp"

namespace oomguard::guard {

// Note [Relative speed]
// Work per token in forward passes: forward 1, backward 2 for a full
// fine-tune (input and weight gradients), 1 for LoRA (input gradients only),
// plus 1 when checkpointing recomputes the forward. QLoRA dequantizes every
// weight twice per step: counted as 30% more time. A micro-batch of t tokens
// runs at t / (t + 512) of the device's speed (small matmuls underfill it).
// fp32 counts twice the time of bf16 or fp16: its matmuls run as TF32 at
// best, at half the 16-bit tensor-core rate of an A100 or H100 (and far
// slower where TF32 is off, torch's default for matmuls).
// The numbers order candidates; they do not predict seconds.
double relative_throughput(const TrainingSetup& s) {
  double work = 1 + (s.method == Method::full ? 2.0 : 1.0) + (s.gradient_checkpointing ? 1.0 : 0.0);
  if (s.method == Method::qlora) work *= 1.3;
  if (s.dtype == DType::fp32) work *= 2;
  const double tokens = static_cast<double>(s.batch_size * s.seq_len);
  return (tokens / (tokens + 512.0)) / work;
}

std::vector<FitCandidate> fit_search(const ModelSpec& spec, const EstimateOptions& options, std::size_t limit) {
  if (options.gpu_memory_bytes == 0)
    throw config_error("--fit needs a device size: give --gpu NAME or --gpu-memory SIZE");
  const TrainingSetup& given = options.setup;
  const std::int64_t effective = given.batch_size * given.grad_accum;

  std::vector<std::int64_t> micro;
  for (std::int64_t b = 1; b <= effective; ++b)
    if (effective % b == 0) micro.push_back(b);
  std::vector<Method> methods = {given.method};
  if (given.method == Method::full) methods.push_back(Method::lora);
  if (given.method != Method::qlora) methods.push_back(Method::qlora);
  std::vector<Optimizer> optimizers = {given.optimizer};
  if (given.optimizer != Optimizer::adamw_8bit) optimizers.push_back(Optimizer::adamw_8bit);
  std::vector<std::int64_t> ranks = {given.lora_r};
  if (given.lora_r > 8) ranks.push_back(8);
  std::vector<DType> dtypes = {given.dtype};
  if (given.dtype == DType::fp32) dtypes.push_back(DType::bf16);

  const double base_speed = relative_throughput(given);
  std::vector<FitCandidate> fits;
  for (auto dtype : dtypes)
  for (auto method : methods)
    for (auto rank : ranks)
      for (auto optimizer : optimizers)
        for (bool checkpointing : {given.gradient_checkpointing, true})
          for (auto b : micro) {
            if (method == Method::full && rank != given.lora_r) continue;
            TrainingSetup s = given;
            s.dtype = dtype;
            s.method = method;
            s.lora_r = rank;
            s.optimizer = optimizer;
            s.gradient_checkpointing = checkpointing;
            s.batch_size = b;
            s.grad_accum = effective / b;
            if (method != Method::full && given.method == Method::full) s.mixed_precision = false;
            EstimateOptions o = options;
            o.setup = s;
            FitCandidate c{s, estimate(spec, o), relative_throughput(s) / base_speed, {}};
            if (!c.estimate.fits.value_or(false)) continue;
            if (s.dtype != given.dtype) c.changes.push_back(fmt::format("dtype {}", name(s.dtype)));
            if (s.method != given.method) c.changes.push_back(fmt::format("method {}", name(s.method)));
            if (s.method != Method::full && s.lora_r != given.lora_r) c.changes.push_back(fmt::format("LoRA r {}", s.lora_r));
            if (s.optimizer != given.optimizer) c.changes.push_back(fmt::format("optimizer {}", name(s.optimizer)));
            if (s.gradient_checkpointing != given.gradient_checkpointing)
              c.changes.push_back("gradient checkpointing");
            if (s.batch_size != given.batch_size)
              c.changes.push_back(fmt::format("micro-batch {} x accumulation {}", s.batch_size, s.grad_accum));
            fits.push_back(std::move(c));
          }
  // Note [Which fitting configurations are shown]
  // Every row fits, so more headroom alone is no reason to change more. A
  // row is left out when
  //  * another row makes a strict subset of its changes and is at least
  //    as fast (an 8-bit optimizer or LoRA rank 8 on top of a change that
  //    fits already, a smaller micro-batch where checkpointing alone fits);
  //  * or another row with no more changes trains the same way (method
  //    and dtype) with no more memory and no less speed, and is better in
  //    one of them.
  // The first rule strictly lowers the number of changes and the second
  // never raises it and is a strict order on (peak, speed), so no two rows
  // drop each other.
  // Across methods nothing is dropped: a LoRA row, smaller and by the
  // heuristic faster, would otherwise hide every full fine-tune that fits,
  // though it trains something else. The rest are ordered by speed; among
  // equals, fewest changes, then most headroom.
  auto strict_subset = [](const std::vector<std::string>& small, const std::vector<std::string>& large) {
    return small.size() < large.size() &&
           std::all_of(small.begin(), small.end(), [&large](const std::string& change) {
             return std::find(large.begin(), large.end(), change) != large.end();
           });
  };
  auto dominates = [&strict_subset](const FitCandidate& b, const FitCandidate& a) {
    if (strict_subset(b.changes, a.changes) && b.relative_speed >= a.relative_speed) return true;
    // No more changes than `a`: with the rule above, a row is never both
    // dropping and dropped by another (LoRA rank 8 on top lowers the peak
    // at the same speed, and adds a change).
    if (b.changes.size() > a.changes.size()) return false;
    if (b.setup.method != a.setup.method || b.setup.dtype != a.setup.dtype) return false;
    if (b.estimate.peak_bytes > a.estimate.peak_bytes || b.relative_speed < a.relative_speed) return false;
    return b.estimate.peak_bytes < a.estimate.peak_bytes || b.relative_speed > a.relative_speed;
  };
  std::vector<FitCandidate> shown;
  for (const auto& a : fits) {
    const bool dominated = std::any_of(fits.begin(), fits.end(), [&](const FitCandidate& b) { return dominates(b, a); });
    // Two equal rows (checkpointing given and forced on): the first stays.
    const bool repeated = std::any_of(shown.begin(), shown.end(), [&a](const FitCandidate& b) {
      return b.changes == a.changes && b.estimate.peak_bytes == a.estimate.peak_bytes;
    });
    if (!dominated && !repeated) shown.push_back(a);
  }
  fits = std::move(shown);
  std::stable_sort(fits.begin(), fits.end(), [](const FitCandidate& a, const FitCandidate& b) {
    if (a.relative_speed != b.relative_speed) return a.relative_speed > b.relative_speed;
    if (a.changes.size() != b.changes.size()) return a.changes.size() < b.changes.size();
    return a.estimate.headroom_bytes > b.estimate.headroom_bytes;
  });
  if (fits.size() > limit) fits.resize(limit);
  return fits;
}

}  // namespace oomguard::guard
