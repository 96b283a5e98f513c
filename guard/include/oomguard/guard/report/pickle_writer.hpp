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

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace oomguard::guard::report {

// Streams a pickle into a string: no tree is built, so a snapshot of 100k
// allocations costs one pass over them. Containers are EMPTY_DICT/EMPTY_LIST
// then MARK ... SETITEMS/APPENDS (an empty MARK ... SETITEMS is valid).
class PickleWriter {
 public:
  PickleWriter();
  void begin_dict();
  void end_dict();
  void begin_list();
  void end_list();
  void str(std::string_view text);
  void integer(std::int64_t value);
  void unsigned_integer(std::uint64_t value);
  void real(double value);
  void boolean(bool value);
  void none();
  // A dict entry: the key, then the value's call.
  void key(std::string_view name) { str(name); }
  std::string& buffer() { return out_; }
  std::string finish();  // STOP, and the bytes

 private:
  std::string out_;
};

// The pickle bytes of `value`: null, bool, integers (any 64-bit value),
// floats, strings, arrays and objects.
std::string to_pickle(const nlohmann::json& value);

}  // namespace oomguard::guard::report
