#include "oomguard/guard/optimizer_state.hpp"

#include <cmath>

namespace oomguard::guard {

// Note [Optimizer state bytes]
// torch.optim.AdamW creates exp_avg and exp_avg_sq like the parameter, so in
// the parameter dtype (bf16 for a pure-bf16 model). With --mixed-precision the
// optimizer works on fp32 master weights, so its states are fp32 too.
// bitsandbytes 8-bit Adam keeps two uint8 states plus one fp32 absmax per
// 256-element block each, but tensors under 4096 elements stay 32-bit; the
// paged variant has the same bytes, in memory the driver may page out.
// SGD keeps one momentum buffer (none without momentum: pass adamw's caller
// nothing). Adafactor (transformers) factors the second moment of a matrix
// into a row and a column vector and keeps no first moment by default.
double optimizer_state_bytes(Optimizer opt, const ParamTensor& p, double state_bytes) {
  const double n = static_cast<double>(p.numel());
  switch (opt) {
    case Optimizer::adamw: return 2 * state_bytes * n;
    case Optimizer::adamw_8bit:
    case Optimizer::paged_adamw_8bit:
      if (p.numel() < 4096) return 2 * 4 * n;
      return 2 * (n + 4 * std::ceil(n / 256));
    case Optimizer::sgd: return state_bytes * n;  // momentum buffer
    case Optimizer::adafactor:
      if (p.cols == 1) return state_bytes * n;
      return state_bytes * static_cast<double>(p.rows + p.cols);
  }
  return 0;
}

// The foreach AdamW of torch computes sqrt(exp_avg_sq) for all parameters of
// a dtype at once: one state-sized list of temporaries.
double optimizer_step_transient(Optimizer opt, double trainable, double state_bytes, double largest_tensor) {
  switch (opt) {
    case Optimizer::adamw: return trainable * state_bytes;
    case Optimizer::adafactor: return 3 * 4 * largest_tensor;  // fp32 param, grad, update
    default: return 0;
  }
}

}  // namespace oomguard::guard
