// The launch check every CUDA host entry ends with: cudaGetLastError() as a
// message (the .cu side, no torch headers) and, in host code, a TORCH_CHECK
// naming the op.
#pragma once

#if !defined(__CUDACC__)
#include <c10/util/Exception.h>
#endif

namespace indexgrad {
namespace cuda {

// cudaGetLastError() as a message, or nullptr when there was no error.
const char* last_error();

#if !defined(__CUDACC__)
inline void check_launch(const char* op) {
  const char* err = last_error();
  TORCH_CHECK(err == nullptr, op, ": CUDA kernel launch failed: ", err);
}
#endif

}  // namespace cuda
}  // namespace indexgrad
