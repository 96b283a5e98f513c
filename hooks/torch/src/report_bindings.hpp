#pragma once

#include <pybind11/pybind11.h>

namespace oomguard::torch_hooks {

void bind_reports(pybind11::module_& m);
// A timeline row at a phase change or step boundary, once reports are on.
void timeline_row_if_open();

}  // namespace oomguard::torch_hooks
