// CUDA kernels of spread_values: grid-stride loops whose bodies are the
// per-thread functions of spread_values_direct.h (tested on the CPU against
// the CPU op, element by element). Forward: repeats (per point), totals
// (per tuple), point values (per point); backward: repeats, then each
// tuple's gradients (per tuple; each thread writes only its own tuple's
// entries: no atomics, deterministic).
#include <cuda_runtime.h>

#include "kernels/spread_values/cuda/spread_values_kernel.h"

namespace indexgrad {
namespace cuda {
namespace {

constexpr int kThreads = 256;

int grid_for(int64_t total) {
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 65535 ? blocks : 65535);
}

#define INDEXGRAD_GRID_STRIDE(i, total)                                \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;     \
       i < (total); i += int64_t(gridDim.x) * blockDim.x)

__global__ void repeats_kernel(SpreadLayout layout, int64_t n,
                               const int64_t* __restrict__ points,
                               uint8_t* __restrict__ repeats) {
  INDEXGRAD_GRID_STRIDE(p, n) { repeats[p] = point_repeats(layout, points, p); }
}

template <typename scalar_t>
__global__ void totals_kernel(SpreadLayout layout, int64_t tuples,
                              const int64_t* __restrict__ points,
                              const uint8_t* __restrict__ repeats,
                              const scalar_t* __restrict__ means,
                              const scalar_t* __restrict__ sigmas,
                              double* __restrict__ totals) {
  INDEXGRAD_GRID_STRIDE(t, tuples) {
    totals[t] = tuple_total(layout, points, repeats, means, sigmas, t);
  }
}

template <typename scalar_t>
__global__ void values_kernel(SpreadLayout layout, int64_t n,
                              const int64_t* __restrict__ points,
                              const uint8_t* __restrict__ repeats,
                              const scalar_t* __restrict__ means,
                              const scalar_t* __restrict__ sigmas,
                              const scalar_t* __restrict__ values,
                              const double* __restrict__ totals,
                              scalar_t* __restrict__ out) {
  INDEXGRAD_GRID_STRIDE(p, n) {
    out[p] = static_cast<scalar_t>(point_value(layout, points, repeats, means,
                                               sigmas, values, totals, p));
  }
}

template <typename scalar_t>
__global__ void gradients_kernel(SpreadLayout layout, int64_t tuples,
                                 const int64_t* __restrict__ points,
                                 const uint8_t* __restrict__ repeats,
                                 const scalar_t* __restrict__ means,
                                 const scalar_t* __restrict__ sigmas,
                                 const scalar_t* __restrict__ values,
                                 const scalar_t* __restrict__ grad,
                                 scalar_t* __restrict__ grad_means,
                                 scalar_t* __restrict__ grad_sigmas,
                                 scalar_t* __restrict__ grad_values) {
  INDEXGRAD_GRID_STRIDE(t, tuples) {
    const TupleGradient g = tuple_gradient(layout, points, repeats, means,
                                           sigmas, values, grad, t);
    for (int d = 0; d < layout.rank; ++d) {
      grad_means[t * layout.rank + d] = static_cast<scalar_t>(g.mu[d]);
      grad_sigmas[t * layout.rank + d] = static_cast<scalar_t>(g.sigma[d]);
    }
    grad_values[t] = static_cast<scalar_t>(g.value);
  }
}

#undef INDEXGRAD_GRID_STRIDE

}  // namespace

template <typename scalar_t>
void spread_values_forward(const SpreadLayout& layout, int64_t tuples,
                           const int64_t* points, const scalar_t* means,
                           const scalar_t* sigmas, const scalar_t* values,
                           uint8_t* repeats, double* totals, scalar_t* out,
                           void* stream) {
  const int64_t n = tuples * layout.s;
  if (n == 0) return;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  repeats_kernel<<<grid_for(n), kThreads, 0, st>>>(layout, n, points, repeats);
  totals_kernel<scalar_t><<<grid_for(tuples), kThreads, 0, st>>>(
      layout, tuples, points, repeats, means, sigmas, totals);
  values_kernel<scalar_t><<<grid_for(n), kThreads, 0, st>>>(
      layout, n, points, repeats, means, sigmas, values, totals, out);
}

template <typename scalar_t>
void spread_values_backward(const SpreadLayout& layout, int64_t tuples,
                            const int64_t* points, const scalar_t* means,
                            const scalar_t* sigmas, const scalar_t* values,
                            const scalar_t* grad, uint8_t* repeats,
                            scalar_t* grad_means, scalar_t* grad_sigmas,
                            scalar_t* grad_values, void* stream) {
  const int64_t n = tuples * layout.s;
  if (n == 0) return;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  repeats_kernel<<<grid_for(n), kThreads, 0, st>>>(layout, n, points, repeats);
  gradients_kernel<scalar_t><<<grid_for(tuples), kThreads, 0, st>>>(
      layout, tuples, points, repeats, means, sigmas, values, grad, grad_means,
      grad_sigmas, grad_values);
}

#define INSTANTIATE(T)                                                       \
  template void spread_values_forward<T>(const SpreadLayout&, int64_t,       \
                                         const int64_t*, const T*, const T*, \
                                         const T*, uint8_t*, double*, T*,    \
                                         void*);                             \
  template void spread_values_backward<T>(                                   \
      const SpreadLayout&, int64_t, const int64_t*, const T*, const T*,      \
      const T*, const T*, uint8_t*, T*, T*, T*, void*);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace cuda
}  // namespace indexgrad
