// The launch check every CUDA host entry ends with: cudaGetLastError() as a
// message (the .cu side, no torch headers) and, in host code, a TORCH_CHECK
// naming the op; and the device check it starts with.
#pragma once

#if !defined(__CUDACC__)
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#endif

namespace indexgrad {
namespace cuda {

// cudaGetLastError() as a message, or nullptr when there was no error.
const char* last_error();

#if !defined(__CUDACC__)
// The first check of every CUDA host entry: the tensor that selected the
// CUDA kernel is on a CUDA device (the others then must match it).
inline void check_on_cuda(const char* op, const char* name, const at::Tensor& t) {
  TORCH_CHECK(t.is_cuda(), op, ": ", name, " must be a CUDA tensor, got ", t.device());
}

inline void check_launch(const char* op) {
  const char* err = last_error();
  TORCH_CHECK(err == nullptr, op, ": CUDA kernel launch failed: ", err);
}
#endif

}  // namespace cuda
}  // namespace indexgrad
