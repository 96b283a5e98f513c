// A minimal pickle writer: enough of protocol 4 for memory_viz's snapshot.
//
// Note [The opcodes memory_viz reads]
// pytorch.org/memory_viz unpickles in JavaScript and accepts protocols 2 to 4
// with a small opcode set. We write only PROTO 4, EMPTY_DICT / EMPTY_LIST
// with MARK + SETITEMS / APPENDS, SHORT_BINUNICODE / BINUNICODE, BININT /
// LONG1, BINFLOAT, NEWTRUE / NEWFALSE, NONE and STOP, all of which it (and
// Python's pickle) reads. No FRAME (framing is optional) and no memo: the
// values are trees, nothing is shared. Dict keys come out sorted (JSON
// objects are ordered maps here), which neither reader cares about.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace oomguard::guard::report {

// The pickle bytes of `value`: null, bool, integers (any 64-bit value),
// floats, strings, arrays and objects.
std::string to_pickle(const nlohmann::json& value);

}  // namespace oomguard::guard::report
