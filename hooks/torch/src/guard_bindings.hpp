// oomguard._C's guard functions: the predictor, the policy and the run state.
#pragma once

#include <pybind11/pybind11.h>

namespace oomguard::torch_hooks {

void bind_guard(pybind11::module_& m);

}  // namespace oomguard::torch_hooks
