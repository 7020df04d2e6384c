// CUDA kernels of spread_values: grid-stride loops whose bodies are the
// per-thread functions of spread_values_direct.h and spread_values_grid.h
// (tested on the CPU against the CPU op, element by element). Direct
// (small chunks): repeats (per point), totals (per tuple), point values
// (per point); backward: repeats, then each tuple's gradients (per tuple;
// each thread writes only its own tuple's entries: no atomics,
// deterministic). Grid (large chunks): keys, then (after the host's sort)
// repeats and totals, the values scattered per tuple with atomicAdd into a
// double buffer (the one non-deterministic sum), the gradients per tuple.
#include <cuda_runtime.h>

#include "kernels/common/cuda/grid_stride.h"
#include "kernels/spread_values/cuda/spread_values_kernel.h"

namespace indexgrad {
namespace cuda {
namespace {

constexpr int kThreads = 256;



// Per point: 1 when it repeats an earlier point of its chunk.
template <typename Reach>
__global__ void repeats_kernel(Reach reach, int64_t n, const int64_t* __restrict__ points,
                               uint8_t* __restrict__ repeats) {
  INDEXGRAD_GRID_STRIDE(p, n) { repeats[p] = reach.is_repeat(points, p); }
}

// Per tuple: its normaliser; `reach` a ChunkReach or a GridReach.
template <typename Reach, typename scalar_t>
__global__ void totals_kernel(Reach reach, int64_t tuples, const int64_t* __restrict__ points,
                              const uint8_t* __restrict__ repeats,
                              const scalar_t* __restrict__ means,
                              const scalar_t* __restrict__ sigmas,
                              double* __restrict__ totals) {
  INDEXGRAD_GRID_STRIDE(t, tuples) {
    totals[t] = tuple_total(reach, points, repeats, means, sigmas, t);
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

// Per tuple: its gradients; `reach` a ChunkReach or a GridReach.
template <typename Reach, typename scalar_t>
__global__ void gradients_kernel(Reach reach, int64_t tuples,
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
    const TupleGradient g =
        tuple_gradient(reach, points, repeats, means, sigmas, values, grad, t);
    for (int d = 0; d < reach.layout.rank; ++d) {
      grad_means[t * reach.layout.rank + d] = static_cast<scalar_t>(g.mu[d]);
      grad_sigmas[t * reach.layout.rank + d] = static_cast<scalar_t>(g.sigma[d]);
    }
    grad_values[t] = static_cast<scalar_t>(g.value);
  }
}

__global__ void grid_keys_kernel(SpreadLayout layout, SpreadGrid grid,
                                 const int64_t* __restrict__ points, int64_t* __restrict__ keys) {
  INDEXGRAD_GRID_STRIDE(p, grid.n) { keys[p] = grid_key(layout, grid, points, p); }
}

struct AtomicAddDouble {
  __device__ void operator()(double* at, double value) const { atomicAdd(at, value); }
};

template <typename scalar_t>
__global__ void grid_scatter_kernel(GridReach reach, int64_t tuples,
                                    const int64_t* __restrict__ points,
                                    const uint8_t* __restrict__ repeats,
                                    const scalar_t* __restrict__ means,
                                    const scalar_t* __restrict__ sigmas,
                                    const scalar_t* __restrict__ values,
                                    const double* __restrict__ totals, double* acc) {
  INDEXGRAD_GRID_STRIDE(t, tuples) {
    grid_tuple_scatter(reach, points, repeats, means, sigmas, values, totals, t, acc,
                       AtomicAddDouble{});
  }
}

template <typename scalar_t>
__global__ void to_scalar_kernel(int64_t n, const double* __restrict__ acc,
                                 scalar_t* __restrict__ out) {
  INDEXGRAD_GRID_STRIDE(p, n) { out[p] = static_cast<scalar_t>(acc[p]); }
}

}  // namespace

void spread_values_grid_keys(const SpreadLayout& layout, const SpreadGrid& grid,
                             const int64_t* points, int64_t* keys, void* stream) {
  if (grid.n == 0) return;
  grid_keys_kernel<<<blocks_for(grid.n, kThreads), kThreads, 0,
                     static_cast<cudaStream_t>(stream)>>>(layout, grid, points, keys);
}

template <typename scalar_t>
void spread_values_grid_forward(const GridReach& reach, int64_t tuples, const int64_t* points,
                                const scalar_t* means, const scalar_t* sigmas,
                                const scalar_t* values, uint8_t* repeats, double* totals,
                                double* acc, scalar_t* out, void* stream) {
  const int64_t n = reach.grid.n;
  if (n == 0) return;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  cudaMemsetAsync(acc, 0, sizeof(double) * n, st);
  repeats_kernel<<<blocks_for(n, kThreads), kThreads, 0, st>>>(reach, n, points, repeats);
  totals_kernel<GridReach, scalar_t><<<blocks_for(tuples, kThreads), kThreads, 0, st>>>(
      reach, tuples, points, repeats, means, sigmas, totals);
  grid_scatter_kernel<scalar_t><<<blocks_for(tuples, kThreads), kThreads, 0, st>>>(
      reach, tuples, points, repeats, means, sigmas, values, totals, acc);
  to_scalar_kernel<scalar_t><<<blocks_for(n, kThreads), kThreads, 0, st>>>(n, acc, out);
}

template <typename scalar_t>
void spread_values_forward(const SpreadLayout& layout, int64_t tuples,
                           const int64_t* points, const scalar_t* means,
                           const scalar_t* sigmas, const scalar_t* values,
                           uint8_t* repeats, double* totals, scalar_t* out,
                           void* stream) {
  const int64_t n = tuples * layout.s;
  if (n == 0) return;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const ChunkReach reach{layout};
  repeats_kernel<<<blocks_for(n, kThreads), kThreads, 0, st>>>(reach, n, points, repeats);
  totals_kernel<ChunkReach, scalar_t><<<blocks_for(tuples, kThreads), kThreads, 0, st>>>(
      reach, tuples, points, repeats, means, sigmas, totals);
  values_kernel<scalar_t><<<blocks_for(n, kThreads), kThreads, 0, st>>>(
      layout, n, points, repeats, means, sigmas, values, totals, out);
}

template <typename Reach, typename scalar_t>
void spread_values_backward(const Reach& reach, int64_t tuples, const int64_t* points,
                            const scalar_t* means, const scalar_t* sigmas,
                            const scalar_t* values, const scalar_t* grad, uint8_t* repeats,
                            scalar_t* grad_means, scalar_t* grad_sigmas,
                            scalar_t* grad_values, void* stream) {
  const int64_t n = tuples * reach.layout.s;
  if (n == 0) return;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  repeats_kernel<<<blocks_for(n, kThreads), kThreads, 0, st>>>(reach, n, points, repeats);
  gradients_kernel<Reach, scalar_t><<<blocks_for(tuples, kThreads), kThreads, 0, st>>>(
      reach, tuples, points, repeats, means, sigmas, values, grad, grad_means, grad_sigmas,
      grad_values);
}

#define INSTANTIATE(T)                                                                     \
  template void spread_values_forward<T>(const SpreadLayout&, int64_t, const int64_t*,     \
                                         const T*, const T*, const T*, uint8_t*, double*,  \
                                         T*, void*);                                       \
  template void spread_values_grid_forward<T>(const GridReach&, int64_t, const int64_t*,   \
                                              const T*, const T*, const T*, uint8_t*,      \
                                              double*, double*, T*, void*);                \
  template void spread_values_backward<ChunkReach, T>(                                     \
      const ChunkReach&, int64_t, const int64_t*, const T*, const T*, const T*, const T*,  \
      uint8_t*, T*, T*, T*, void*);                                                        \
  template void spread_values_backward<GridReach, T>(                                      \
      const GridReach&, int64_t, const int64_t*, const T*, const T*, const T*, const T*,   \
      uint8_t*, T*, T*, T*, void*);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace cuda
}  // namespace indexgrad
