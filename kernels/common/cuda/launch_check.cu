#include <cuda_runtime.h>

#include "kernels/common/cuda/launch_check.h"

namespace indexgrad {
namespace cuda {

const char* last_error() {
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace cuda
}  // namespace indexgrad
