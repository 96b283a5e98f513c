#include "lt_descriptors.hpp"

#include <algorithm>
#include <cstring>

namespace oomguard::sim::blas {

void Descriptor::set(int attribute, const void* value, std::size_t bytes) {
  const auto* begin = static_cast<const unsigned char*>(value);
  std::lock_guard lock(mutex_);
  values_[attribute].assign(begin, begin + bytes);
}

bool Descriptor::get(int attribute, void* value, std::size_t bytes, std::size_t* written) const {
  std::lock_guard lock(mutex_);
  auto it = values_.find(attribute);
  const std::size_t needed = it == values_.end() ? std::max<std::size_t>(bytes, 1) : it->second.size();
  if (written) *written = needed;
  if (bytes == 0) return true;
  if (!value || bytes < needed) return false;
  if (it == values_.end()) {
    std::memset(value, 0, bytes);
  } else {
    std::memcpy(value, it->second.data(), needed);
  }
  return true;
}

}  // namespace oomguard::sim::blas
