// cuBLASLt's descriptors (matmul descriptions, matrix layouts, matmul
// preferences): attribute stores that a program fills and the heuristic
// and cublasLtMatmul read. Checked like handles (Note [cuBLAS handles]):
// a magic word per kind, kept cleared after destruction.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

namespace oomguard::sim::blas {

enum class DescriptorKind : std::uint64_t {
  matmul = 0x6f6f6d676d6d6c31ull,      // "oomgmml1"
  layout = 0x6f6f6d676c61796full,      // "oomglayo"
  preference = 0x6f6f6d6770726566ull,  // "oomgpref"
};

class Descriptor {
 public:
  explicit Descriptor(DescriptorKind kind) : magic_(static_cast<std::uint64_t>(kind)) {}

  // `descriptor` if it is a live descriptor of `kind`, else nullptr.
  static Descriptor* live(const void* descriptor, DescriptorKind kind) {
    auto* d = static_cast<Descriptor*>(const_cast<void*>(descriptor));
    return d && d->magic_.load(std::memory_order_relaxed) == static_cast<std::uint64_t>(kind) ? d : nullptr;
  }
  void retire() { magic_.store(0, std::memory_order_relaxed); }

  void set(int attribute, const void* value, std::size_t bytes);
  // cuBLASLt's get protocol: with bytes == 0, only *written (the size the
  // value needs) is set; an attribute never set reads as zeros. False when
  // `bytes` is too small for the stored value.
  bool get(int attribute, void* value, std::size_t bytes, std::size_t* written) const;

 private:
  std::atomic<std::uint64_t> magic_;
  mutable std::mutex mutex_;  // guards values_
  std::map<int, std::vector<unsigned char>> values_;
};

}  // namespace oomguard::sim::blas
