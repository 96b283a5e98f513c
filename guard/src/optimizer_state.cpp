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

// Note [The optimizer step's temporaries]
// What torch's AdamW allocates beside its states while it steps, by how it
// runs (measured on the simulated A100, a 5M-parameter Llama in bf16 and
// fp32; tests/python/test_estimator_grid.py):
//  * foreach=True (`_multi_tensor_adamw`): torch._foreach_sqrt(exp_avg_sq)
//    over every parameter of a dtype at once, one state-sized list;
//  * foreach=False (`_single_tensor_adamw`): per parameter, sqrt() and the
//    division by the bias correction before the first is freed, so two
//    copies of the largest tensor (2 x 2,097,152 + 512 B measured for a
//    2 MB embedding);
//  * fused=True: one kernel updates in place; 164 KB measured beside 20 MB
//    of states, counted as none.
// Adafactor (transformers) makes fp32 copies of the parameter, gradient and
// update of one tensor at a time.
double optimizer_step_transient(Optimizer opt, OptimizerImpl impl, double trainable, double state_bytes,
                                double largest_tensor) {
  switch (opt) {
    case Optimizer::adamw:
      switch (impl) {
        case OptimizerImpl::foreach: return trainable * state_bytes;
        case OptimizerImpl::for_loop: return 2 * largest_tensor * state_bytes;
        case OptimizerImpl::fused: return 0;
      }
      return 0;
    case Optimizer::adafactor: return 3 * 4 * largest_tensor;  // fp32 param, grad, update
    default: return 0;
  }
}

}  // namespace oomguard::guard
