// The launch shape of every IndexGrad CUDA kernel: a grid-stride loop over
// `total` items in blocks of `threads`, at most 65,535 blocks (the loop
// covers the rest; enough to fill an H100). nvcc only.
#pragma once

#include <cstdint>

namespace indexgrad {
namespace cuda {

inline int blocks_for(int64_t total, int threads) {
  const int64_t blocks = (total + threads - 1) / threads;
  return static_cast<int>(blocks < 65535 ? blocks : 65535);
}

}  // namespace cuda
}  // namespace indexgrad

// for (i = this thread's first item; i < total; i += all threads).
#define INDEXGRAD_GRID_STRIDE(i, total)                                  \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;       \
       i < (total); i += int64_t(gridDim.x) * blockDim.x)
