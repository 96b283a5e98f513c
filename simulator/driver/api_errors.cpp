// cuGetErrorName and cuGetErrorString for every code of the CUDA 13
// driver API (error_codes.def). They work before cuInit, as on a GPU.
#include "api.hpp"

OOMGUARD_SIM_DRIVER_API CUresult cuGetErrorName(CUresult error, const char** name) {
  if (!name) return CUDA_ERROR_INVALID_VALUE;
  switch (error) {
#define OOMGUARD_SIM_ERROR(code, description) \
  case code:                                  \
    *name = #code;                            \
    return CUDA_SUCCESS;
#include "error_codes.def"
#undef OOMGUARD_SIM_ERROR
  }
  *name = nullptr;
  return CUDA_ERROR_INVALID_VALUE;
}

OOMGUARD_SIM_DRIVER_API CUresult cuGetErrorString(CUresult error, const char** text) {
  if (!text) return CUDA_ERROR_INVALID_VALUE;
  switch (error) {
#define OOMGUARD_SIM_ERROR(code, description) \
  case code:                                  \
    *text = description;                      \
    return CUDA_SUCCESS;
#include "error_codes.def"
#undef OOMGUARD_SIM_ERROR
  }
  *text = nullptr;
  return CUDA_ERROR_INVALID_VALUE;
}
