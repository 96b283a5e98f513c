// Which library allocated what, from MEMORY2 activity records (asynchronous:
// they arrive when CUPTI flushes a buffer, not at the call).
#pragma once

#include <cupti.h>

namespace oomguard::cupti {

// Enable MEMORY2 records and register the buffer callbacks.
CUptiResult enable_memory_records();
void disable_memory_records();

}  // namespace oomguard::cupti
