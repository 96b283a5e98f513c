// The driver entry points the simulator does not provide
// (unsupported_entry_points.def), for cuGetProcAddress.
#pragma once

#include <string_view>

namespace oomguard::sim {

// The exported stub named `symbol`, or nullptr.
void* find_unsupported_entry_point(std::string_view symbol);

}  // namespace oomguard::sim
