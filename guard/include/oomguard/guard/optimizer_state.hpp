// What an optimizer keeps per trainable parameter, and the biggest temporary
// its step allocates: known before the first step allocates anything, so the
// estimator and the runtime predictor can both count it.
#pragma once

#include "oomguard/guard/model_spec.hpp"
#include "oomguard/guard/training_setup.hpp"

namespace oomguard::guard {

// Bytes of state kept for parameter `p` whose states are `state_bytes` wide
// (the parameter dtype, or 4 with fp32 master weights). See
// Note [Optimizer state bytes] in optimizer_state.cpp.
double optimizer_state_bytes(Optimizer opt, const ParamTensor& p, double state_bytes);

// The biggest temporary of one optimizer step over `trainable` elements
// whose largest tensor has `largest_tensor` elements, run as `impl`.
double optimizer_step_transient(Optimizer opt, OptimizerImpl impl, double trainable, double state_bytes,
                                double largest_tensor);

}  // namespace oomguard::guard
