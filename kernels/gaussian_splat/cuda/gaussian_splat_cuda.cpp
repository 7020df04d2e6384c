// CUDA host entry of gaussian_splat and its backward: the shared checks
// (one read-back: whether every point is finite, a synchronisation),
// device guard, stream, then the launchers of gaussian_splat_kernel.cu.
// Compiled only in CUDA builds (CMake on the GPU machine; compile-checked
// by `--config=cuda`).
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "kernels/common/cuda/launch_check.h"


#include "kernels/gaussian_splat/cuda/gaussian_splat_kernel.h"
#include "kernels/gaussian_splat/gaussian_splat.h"
#include "kernels/gaussian_splat/gaussian_splat_math.h"

namespace indexgrad {
namespace {

at::Tensor gaussian_splat_cuda(const at::Tensor& points, double stddev,
                               int64_t height, int64_t width,
                               double tolerance) {
  const char* op = "gaussian_splat";
  cuda::check_on_cuda(op, "points", points);
  const c10::cuda::CUDAGuard guard(points.device());
  detail::check_gaussian_splat_args(op, points, stddev, height, width,
                                    tolerance);
  const int64_t batch = points.size(0), k = points.size(1);
  at::Tensor mask = at::zeros({batch, height, width}, points.options());
  if (mask.numel() == 0 || k == 0) return mask;
  void* stream = at::cuda::getCurrentCUDAStream().stream();
  const at::Tensor p = points.contiguous();
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "gaussian_splat_cuda", [&] {
    cuda::gaussian_splat_forward<scalar_t>(
        batch, k, p.data_ptr<scalar_t>(), 1.0 / (2.0 * stddev * stddev),
        splat_cutoff_radius(stddev, tolerance), height, width,
        mask.data_ptr<scalar_t>(), stream);
  });
  cuda::check_launch(op);
  return mask;
}

at::Tensor gaussian_splat_backward_cuda(const at::Tensor& grad,
                                        const at::Tensor& points,
                                        double stddev, int64_t height,
                                        int64_t width, double tolerance) {
  const char* op = "_gaussian_splat_backward";
  cuda::check_on_cuda(op, "points", points);
  const c10::cuda::CUDAGuard guard(points.device());
  detail::check_gaussian_splat_args(op, points, stddev, height, width,
                                    tolerance);
  const int64_t batch = points.size(0), k = points.size(1);
  detail::check_gaussian_splat_grad(op, grad, points, height, width);
  at::Tensor grad_points = at::zeros({batch, k, 2}, points.options());
  if (grad_points.numel() == 0) return grad_points;
  void* stream = at::cuda::getCurrentCUDAStream().stream();
  const at::Tensor p = points.contiguous();
  const at::Tensor g = grad.contiguous();
  AT_DISPATCH_FLOATING_TYPES(
      points.scalar_type(), "gaussian_splat_backward_cuda", [&] {
        cuda::gaussian_splat_backward<scalar_t>(
            batch, k, p.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(),
            1.0 / (2.0 * stddev * stddev), splat_cutoff_radius(stddev, tolerance),
            height, width, grad_points.data_ptr<scalar_t>(), stream);
      });
  cuda::check_launch(op);
  return grad_points;
}

}  // namespace

TORCH_LIBRARY_IMPL(indexgrad, CUDA, m) {
  m.impl("gaussian_splat", TORCH_FN(gaussian_splat_cuda));
  m.impl("_gaussian_splat_backward", TORCH_FN(gaussian_splat_backward_cuda));
}

}  // namespace indexgrad
