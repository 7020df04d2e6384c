// CUDA kernels of sparse_contract: one thread per (batch, entry) running the
// CPU loops' per-entry bodies (contract_entry_forward / _backward,
// sparse_contract_math.h) with atomicAdd, where duplicate tuples meet.
#include <cuda_runtime.h>

#include "kernels/common/cuda/grid_stride.h"
#include "kernels/sparse_contract/cuda/sparse_contract_kernel.h"

namespace indexgrad {
namespace cuda {
namespace {

constexpr int kThreads = 256;

struct AtomicAdd {
  template <typename scalar_t>
  __device__ void operator()(scalar_t* at, scalar_t value) const {
    atomicAdd(at, value);
  }
};

template <typename scalar_t>
__global__ void forward_kernel(ContractLayout layout, int64_t batch,
                               int64_t nnz, const int64_t* __restrict__ indices,
                               const scalar_t* __restrict__ values,
                               const scalar_t* __restrict__ x,
                               scalar_t* __restrict__ y) {
  const int64_t total = batch * nnz;
  INDEXGRAD_GRID_STRIDE(t, total) {
    contract_entry_forward(layout, nnz, indices, values, x, y, t / nnz, t % nnz,
                           AtomicAdd{});
  }
}

template <typename scalar_t>
__global__ void backward_kernel(ContractLayout layout, int64_t batch,
                                int64_t nnz,
                                const int64_t* __restrict__ indices,
                                const scalar_t* __restrict__ values,
                                const scalar_t* __restrict__ x,
                                const scalar_t* __restrict__ grad_y,
                                scalar_t* __restrict__ grad_values,
                                scalar_t* __restrict__ grad_x) {
  const int64_t total = batch * nnz;
  INDEXGRAD_GRID_STRIDE(t, total) {
    contract_entry_backward(layout, nnz, indices, values, x, grad_y, grad_values, grad_x,
                            t / nnz, t % nnz, AtomicAdd{});
  }
}

}  // namespace

template <typename scalar_t>
void sparse_contract_forward(const ContractLayout& layout, int64_t batch,
                             int64_t nnz, const int64_t* indices,
                             const scalar_t* values, const scalar_t* x,
                             scalar_t* y, void* stream) {
  const int64_t total = batch * nnz;
  if (total == 0) return;
  forward_kernel<scalar_t>
      <<<blocks_for(total, kThreads), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
          layout, batch, nnz, indices, values, x, y);
}

template <typename scalar_t>
void sparse_contract_backward(const ContractLayout& layout, int64_t batch,
                              int64_t nnz, const int64_t* indices,
                              const scalar_t* values, const scalar_t* x,
                              const scalar_t* grad_y, scalar_t* grad_values,
                              scalar_t* grad_x, void* stream) {
  const int64_t total = batch * nnz;
  if (total == 0) return;
  backward_kernel<scalar_t>
      <<<blocks_for(total, kThreads), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
          layout, batch, nnz, indices, values, x, grad_y, grad_values,
          grad_x);
}

#define INSTANTIATE(T)                                                     \
  template void sparse_contract_forward<T>(const ContractLayout&, int64_t, \
                                           int64_t, const int64_t*,        \
                                           const T*, const T*, T*, void*); \
  template void sparse_contract_backward<T>(                               \
      const ContractLayout&, int64_t, int64_t, const int64_t*, const T*,   \
      const T*, const T*, T*, T*, void*);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace cuda
}  // namespace indexgrad
