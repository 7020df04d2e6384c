// Plain C++ interface of the CUDA kernels of gaussian_splat (no torch
// headers). points [tuples = batch * k, 2], mask and grad [batch, height,
// width], grad_points [tuples, 2]: contiguous device buffers; `mask` must be
// zeroed by the caller. Launches on `stream` (a cudaStream_t as void*).
#pragma once

#include <cstdint>

namespace indexgrad {
namespace cuda {

template <typename scalar_t>
void gaussian_splat_forward(int64_t batch, int64_t k, const scalar_t* points,
                            double inv_two_var, double radius, int64_t height,
                            int64_t width, scalar_t* mask, void* stream);

template <typename scalar_t>
void gaussian_splat_backward(int64_t batch, int64_t k, const scalar_t* points,
                             const scalar_t* grad, double inv_two_var,
                             double radius, int64_t height, int64_t width,
                             scalar_t* grad_points, void* stream);


}  // namespace cuda
}  // namespace indexgrad
