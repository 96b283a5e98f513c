// Kernel launches: checked against the device's limits, recorded as a
// graph node on a capturing stream, counted otherwise; never run.
#pragma once

#include <cuda.h>

#include <array>

#include "driver.hpp"

namespace oomguard::sim {

// `max_dynamic_shared`: what cuFuncSetAttribute allowed the function above
// the 48 KiB default (0: the default).
CUresult launch(Driver& driver, KernelRecord* kernel, std::array<unsigned, 3> grid, std::array<unsigned, 3> block,
                std::size_t shared_bytes, CUstream stream, int max_dynamic_shared);

}  // namespace oomguard::sim
