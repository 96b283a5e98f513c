// Search the configurations that fit a GPU and rank them by expected speed.
#pragma once

#include <string>
#include <vector>

#include "oomguard/guard/estimator.hpp"

namespace oomguard::guard {

struct FitCandidate {
  TrainingSetup setup;
  Estimate estimate;
  double relative_speed = 0;          // tokens/s relative to the given setup
  std::vector<std::string> changes;   // what differs from the given setup
};

// Vary the micro-batch (accumulation keeps batch*accum), checkpointing, the
// 8-bit optimizer, LoRA/QLoRA, the LoRA rank and bf16 for an fp32 run; keep
// those that fit and that no other row beats (Note [Which fitting
// configurations are shown]), fastest first. Needs options.gpu_memory_bytes.
std::vector<FitCandidate> fit_search(const ModelSpec& spec, const EstimateOptions& options, std::size_t limit = 10);

// Note [Relative speed] in fit_search.cpp: a heuristic, not a measurement.
double relative_throughput(const TrainingSetup& setup);

}  // namespace oomguard::guard
