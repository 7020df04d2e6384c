// CUDA kernels of gaussian_splat: one thread per point running splat_point
// (forward; pixels shared by several points meet in atomicAdd, so the
// mask's low bits depend on the order of the additions) or
// splat_point_gradient (backward; each thread owns its point's gradient:
// deterministic). The bodies are the CPU kernel's (gaussian_splat_math.h).
#include <cuda_runtime.h>

#include "kernels/common/cuda/grid_stride.h"
#include "kernels/gaussian_splat/cuda/gaussian_splat_kernel.h"
#include "kernels/gaussian_splat/gaussian_splat_math.h"

namespace indexgrad {
namespace cuda {
namespace {

constexpr int kThreads = 128;


template <typename scalar_t>
struct AtomicAdd {
  scalar_t* mask;  // this point's batch row
  __device__ void operator()(int64_t pixel, double weight) const {
    atomicAdd(mask + pixel, static_cast<scalar_t>(weight));
  }
};

template <typename scalar_t>
__global__ void forward_kernel(int64_t tuples, int64_t k,
                               const scalar_t* __restrict__ points,
                               double inv_two_var, double radius,
                               int64_t height, int64_t width,
                               scalar_t* __restrict__ mask) {
  INDEXGRAD_GRID_STRIDE(t, tuples) {
    AtomicAdd<scalar_t> add{mask + t / k * height * width};
    splat_point(points, t, inv_two_var, radius, height, width, add);
  }
}

template <typename scalar_t>
__global__ void backward_kernel(int64_t tuples, int64_t k,
                                const scalar_t* __restrict__ points,
                                const scalar_t* __restrict__ grad,
                                double inv_two_var, double radius,
                                int64_t height, int64_t width,
                                scalar_t* __restrict__ grad_points) {
  INDEXGRAD_GRID_STRIDE(t, tuples) {
    double gy, gx;
    splat_point_gradient(points, grad + t / k * height * width, t, inv_two_var,
                         radius, height, width, &gy, &gx);
    grad_points[t * 2] = static_cast<scalar_t>(gy);
    grad_points[t * 2 + 1] = static_cast<scalar_t>(gx);
  }
}

}  // namespace

template <typename scalar_t>
void gaussian_splat_forward(int64_t batch, int64_t k, const scalar_t* points,
                            double inv_two_var, double radius, int64_t height,
                            int64_t width, scalar_t* mask, void* stream) {
  const int64_t tuples = batch * k;
  if (tuples == 0) return;
  forward_kernel<scalar_t><<<blocks_for(tuples, kThreads), kThreads, 0,
                             static_cast<cudaStream_t>(stream)>>>(
      tuples, k, points, inv_two_var, radius, height, width, mask);
}

template <typename scalar_t>
void gaussian_splat_backward(int64_t batch, int64_t k, const scalar_t* points,
                             const scalar_t* grad, double inv_two_var,
                             double radius, int64_t height, int64_t width,
                             scalar_t* grad_points, void* stream) {
  const int64_t tuples = batch * k;
  if (tuples == 0) return;
  backward_kernel<scalar_t><<<blocks_for(tuples, kThreads), kThreads, 0,
                              static_cast<cudaStream_t>(stream)>>>(
      tuples, k, points, grad, inv_two_var, radius, height, width,
      grad_points);
}

#define INSTANTIATE(T)                                                        \
  template void gaussian_splat_forward<T>(int64_t, int64_t, const T*, double, \
                                          double, int64_t, int64_t, T*,       \
                                          void*);                             \
  template void gaussian_splat_backward<T>(int64_t, int64_t, const T*,        \
                                           const T*, double, double, int64_t, \
                                           int64_t, T*, void*);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace cuda
}  // namespace indexgrad
