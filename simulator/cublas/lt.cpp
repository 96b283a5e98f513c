// libcublasLt.so.13: handles, descriptors, the heuristic (one algorithm,
// needing no workspace) and cublasLtMatmul as a counted no-op.
#include <cublasLt.h>

#include <cstring>
#include <new>

#include "blas_handle.hpp"
#include "lt_descriptors.hpp"
#include "oomguard_sim/sim_api.h"

#define OOMGUARD_SIM_BLASLT_API extern "C" __attribute__((visibility("default")))

using oomguard::sim::blas::BlasHandle;
using oomguard::sim::blas::Descriptor;
using oomguard::sim::blas::DescriptorKind;
using oomguard::sim::blas::live_handle;

namespace {

template <typename Handle>
cublasStatus_t create(Handle* out, DescriptorKind kind) {
  if (!out) return CUBLAS_STATUS_INVALID_VALUE;
  auto* descriptor = new (std::nothrow) Descriptor(kind);
  if (!descriptor) return CUBLAS_STATUS_ALLOC_FAILED;
  *out = reinterpret_cast<Handle>(descriptor);
  return CUBLAS_STATUS_SUCCESS;
}

// Destroying NULL is allowed, as in the real library.
cublasStatus_t destroy(const void* handle, DescriptorKind kind) {
  if (!handle) return CUBLAS_STATUS_SUCCESS;
  Descriptor* descriptor = Descriptor::live(handle, kind);
  if (!descriptor) return CUBLAS_STATUS_INVALID_VALUE;
  descriptor->retire();  // kept, see lt_descriptors.hpp
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t set(const void* handle, DescriptorKind kind, int attribute, const void* value, std::size_t bytes) {
  Descriptor* descriptor = Descriptor::live(handle, kind);
  if (!descriptor || (!value && bytes != 0)) return CUBLAS_STATUS_INVALID_VALUE;
  descriptor->set(attribute, value, bytes);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t get(const void* handle, DescriptorKind kind, int attribute, void* value, std::size_t bytes,
                   std::size_t* written) {
  const Descriptor* descriptor = Descriptor::live(handle, kind);
  if (!descriptor || (bytes == 0 && !written)) return CUBLAS_STATUS_INVALID_VALUE;
  return descriptor->get(attribute, value, bytes, written) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}

template <typename T>
void set_value(Descriptor& descriptor, int attribute, T value) {
  descriptor.set(attribute, &value, sizeof value);
}

bool live_layouts(std::initializer_list<cublasLtMatrixLayout_t> layouts) {
  for (cublasLtMatrixLayout_t layout : layouts) {
    if (!Descriptor::live(layout, DescriptorKind::layout)) return false;
  }
  return true;
}

}  // namespace

// ------------------------------------------------------------------ handles

OOMGUARD_SIM_BLASLT_API cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
  if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
  auto* blas = new (std::nothrow) BlasHandle();
  if (!blas) return CUBLAS_STATUS_ALLOC_FAILED;
  *handle = reinterpret_cast<cublasLtHandle_t>(blas);
  return CUBLAS_STATUS_SUCCESS;
}

OOMGUARD_SIM_BLASLT_API cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
  return oomguard::sim::blas::retire_handle(handle) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

OOMGUARD_SIM_BLASLT_API size_t cublasLtGetVersion(void) { return CUBLAS_VERSION; }
OOMGUARD_SIM_BLASLT_API size_t cublasLtGetCudartVersion(void) { return 13000; }

OOMGUARD_SIM_BLASLT_API cublasStatus_t cublasLtGetProperty(libraryPropertyType type, int* value) {
  if (!value) return CUBLAS_STATUS_INVALID_VALUE;
  switch (type) {
    case MAJOR_VERSION: *value = CUBLAS_VER_MAJOR; return CUBLAS_STATUS_SUCCESS;
    case MINOR_VERSION: *value = CUBLAS_VER_MINOR; return CUBLAS_STATUS_SUCCESS;
    case PATCH_LEVEL: *value = CUBLAS_VER_PATCH; return CUBLAS_STATUS_SUCCESS;
  }
  return CUBLAS_STATUS_INVALID_VALUE;
}

// ------------------------------------------------------ matmul descriptions

OOMGUARD_SIM_BLASLT_API cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* description,
                                                                cublasComputeType_t compute, cudaDataType_t scale) {
  if (const cublasStatus_t status = create(description, DescriptorKind::matmul); status != CUBLAS_STATUS_SUCCESS) {
    return status;
  }
  auto& d = *reinterpret_cast<Descriptor*>(*description);
  set_value(d, CUBLASLT_MATMUL_DESC_COMPUTE_TYPE, static_cast<int32_t>(compute));
  set_value(d, CUBLASLT_MATMUL_DESC_SCALE_TYPE, static_cast<int32_t>(scale));
  return CUBLAS_STATUS_SUCCESS;
}

OOMGUARD_SIM_BLASLT_API cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t description) {
  return destroy(description, DescriptorKind::matmul);
}

OOMGUARD_SIM_BLASLT_API cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t description,
                                                                      cublasLtMatmulDescAttributes_t attribute,
                                                                      const void* value, size_t bytes) {
  return set(description, DescriptorKind::matmul, static_cast<int>(attribute), value, bytes);
}

OOMGUARD_SIM_BLASLT_API cublasStatus_t cublasLtMatmulDescGetAttribute(cublasLtMatmulDesc_t description,
                                                                      cublasLtMatmulDescAttributes_t attribute,
                                                                      void* value, size_t bytes, size_t* written) {
  return get(description, DescriptorKind::matmul, static_cast<int>(attribute), value, bytes, written);
}

// ----------------------------------------------------------- matrix layouts

OOMGUARD_SIM_BLASLT_API cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType type,
                                                                  uint64_t rows, uint64_t cols, int64_t ld) {
  if (const cublasStatus_t status = create(layout, DescriptorKind::layout); status != CUBLAS_STATUS_SUCCESS) {
    return status;
  }
  auto& d = *reinterpret_cast<Descriptor*>(*layout);
  set_value(d, CUBLASLT_MATRIX_LAYOUT_TYPE, static_cast<uint32_t>(type));
  set_value(d, CUBLASLT_MATRIX_LAYOUT_ROWS, rows);
  set_value(d, CUBLASLT_MATRIX_LAYOUT_COLS, cols);
  set_value(d, CUBLASLT_MATRIX_LAYOUT_LD, ld);
  set_value(d, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, static_cast<int32_t>(1));
  return CUBLAS_STATUS_SUCCESS;
}

OOMGUARD_SIM_BLASLT_API cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
  return destroy(layout, DescriptorKind::layout);
}

OOMGUARD_SIM_BLASLT_API cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout,
                                                                        cublasLtMatrixLayoutAttribute_t attribute,
                                                                        const void* value, size_t bytes) {
  return set(layout, DescriptorKind::layout, static_cast<int>(attribute), value, bytes);
}

OOMGUARD_SIM_BLASLT_API cublasStatus_t cublasLtMatrixLayoutGetAttribute(cublasLtMatrixLayout_t layout,
                                                                        cublasLtMatrixLayoutAttribute_t attribute,
                                                                        void* value, size_t bytes, size_t* written) {
  return get(layout, DescriptorKind::layout, static_cast<int>(attribute), value, bytes, written);
}

// -------------------------------------------------------------- preferences

OOMGUARD_SIM_BLASLT_API cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* preference) {
  return create(preference, DescriptorKind::preference);
}

OOMGUARD_SIM_BLASLT_API cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t preference) {
  return destroy(preference, DescriptorKind::preference);
}

OOMGUARD_SIM_BLASLT_API cublasStatus_t cublasLtMatmulPreferenceSetAttribute(
    cublasLtMatmulPreference_t preference, cublasLtMatmulPreferenceAttributes_t attribute, const void* value,
    size_t bytes) {
  return set(preference, DescriptorKind::preference, static_cast<int>(attribute), value, bytes);
}

OOMGUARD_SIM_BLASLT_API cublasStatus_t cublasLtMatmulPreferenceGetAttribute(
    cublasLtMatmulPreference_t preference, cublasLtMatmulPreferenceAttributes_t attribute, void* value, size_t bytes,
    size_t* written) {
  return get(preference, DescriptorKind::preference, static_cast<int>(attribute), value, bytes, written);
}

// ------------------------------------------------------ heuristic and matmul

// One algorithm that needs no workspace, so it fits every preference's
// CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES; torch then runs it with the
// workspace it allocated anyway, as on a GPU.
OOMGUARD_SIM_BLASLT_API cublasStatus_t cublasLtMatmulAlgoGetHeuristic(
    cublasLtHandle_t handle, cublasLtMatmulDesc_t description, cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
    cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d, cublasLtMatmulPreference_t preference, int requested,
    cublasLtMatmulHeuristicResult_t results[], int* returned) {
  if (!live_handle(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!returned || !results || requested < 1 || !Descriptor::live(description, DescriptorKind::matmul) ||
      !live_layouts({a, b, c, d}) || !Descriptor::live(preference, DescriptorKind::preference)) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  oomguard_sim_count_call("cublasLt", "cublasLtMatmulAlgoGetHeuristic");
  std::memset(&results[0], 0, sizeof results[0]);
  results[0].workspaceSize = 0;
  results[0].state = CUBLAS_STATUS_SUCCESS;
  results[0].wavesCount = 1.0f;
  *returned = 1;
  return CUBLAS_STATUS_SUCCESS;
}

// C may be NULL with beta 0 as in the real API; D's layout must be given.
OOMGUARD_SIM_BLASLT_API cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t description,
                                                      const void*, const void*, cublasLtMatrixLayout_t a,
                                                      const void*, cublasLtMatrixLayout_t b, const void*,
                                                      const void*, cublasLtMatrixLayout_t c, void*,
                                                      cublasLtMatrixLayout_t d, const cublasLtMatmulAlgo_t*, void*,
                                                      size_t, cudaStream_t) {
  if (!live_handle(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!Descriptor::live(description, DescriptorKind::matmul) || !live_layouts({a, b, c, d})) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  oomguard_sim_count_call("cublasLt", "cublasLtMatmul");
  return CUBLAS_STATUS_SUCCESS;
}
