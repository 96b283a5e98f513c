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
// The numbers order candidates; they do not predict seconds.
double relative_throughput(const TrainingSetup& s) {
  double work = 1 + (s.method == Method::full ? 2.0 : 1.0) + (s.gradient_checkpointing ? 1.0 : 0.0);
  if (s.method == Method::qlora) work *= 1.3;
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

  const double base_speed = relative_throughput(given);
  std::vector<FitCandidate> fits;
  for (auto method : methods)
    for (auto rank : ranks)
      for (auto optimizer : optimizers)
        for (bool checkpointing : {given.gradient_checkpointing, true})
          for (auto b : micro) {
            if (method == Method::full && rank != given.lora_r) continue;
            TrainingSetup s = given;
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
            if (s.method != given.method) c.changes.push_back(fmt::format("method {}", name(s.method)));
            if (s.method != Method::full && s.lora_r != given.lora_r) c.changes.push_back(fmt::format("LoRA r {}", s.lora_r));
            if (s.optimizer != given.optimizer) c.changes.push_back(fmt::format("optimizer {}", name(s.optimizer)));
            if (s.gradient_checkpointing != given.gradient_checkpointing)
              c.changes.push_back("gradient checkpointing");
            if (s.batch_size != given.batch_size)
              c.changes.push_back(fmt::format("micro-batch {} x accumulation {}", s.batch_size, s.grad_accum));
            fits.push_back(std::move(c));
          }
  // Those that keep the fine-tuning method first (switching a full fine-tune
  // to LoRA changes what is trained, not only how fast); then fastest first;
  // among equals, the fewest changes, then the most headroom.
  std::stable_sort(fits.begin(), fits.end(), [&given](const FitCandidate& a, const FitCandidate& b) {
    const bool a_keeps = a.setup.method == given.method, b_keeps = b.setup.method == given.method;
    if (a_keeps != b_keeps) return a_keeps;
    if (a.relative_speed != b.relative_speed) return a.relative_speed > b.relative_speed;
    if (a.changes.size() != b.changes.size()) return a.changes.size() < b.changes.size();
    return a.estimate.headroom_bytes > b.estimate.headroom_bytes;
  });
  // Drop duplicates (checkpointing given and forced both on).
  fits.erase(std::unique(fits.begin(), fits.end(),
                         [](const FitCandidate& a, const FitCandidate& b) {
                           return a.changes == b.changes && a.relative_speed == b.relative_speed;
                         }),
             fits.end());
  if (fits.size() > limit) fits.resize(limit);
  return fits;
}

}  // namespace oomguard::guard
