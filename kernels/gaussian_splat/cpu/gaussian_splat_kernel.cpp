// CPU kernel of gaussian_splat: each point draws only the pixels within its
// cut-off radius (splat_point, gaussian_splat_math.h: the CUDA thread's
// body). Forward parallel over the batch (points of a row add into the same
// mask); backward parallel over points (each owns its gradient).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>


#include "kernels/gaussian_splat/gaussian_splat.h"
#include "kernels/gaussian_splat/gaussian_splat_math.h"

namespace indexgrad {
namespace {

at::Tensor gaussian_splat_cpu(const at::Tensor& points, double stddev,
                              int64_t height, int64_t width, double tolerance) {
  detail::check_gaussian_splat_args("gaussian_splat", points, stddev, height,
                                    width, tolerance);
  const int64_t batch = points.size(0), k = points.size(1);
  at::Tensor mask = at::zeros({batch, height, width}, points.options());
  if (mask.numel() == 0 || k == 0) return mask;
  const at::Tensor p = points.contiguous();
  const double inv_two_var = 1.0 / (2.0 * stddev * stddev);
  const double radius = splat_cutoff_radius(stddev, tolerance);
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "gaussian_splat_cpu", [&] {
    const scalar_t* p_ptr = p.data_ptr<scalar_t>();
    scalar_t* m_ptr = mask.data_ptr<scalar_t>();
    at::parallel_for(0, batch, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        scalar_t* m = m_ptr + b * height * width;  // [height, width]
        const auto add = [m](int64_t pixel, double weight) {
          m[pixel] += static_cast<scalar_t>(weight);
        };
        for (int64_t i = 0; i < k; ++i) {
          splat_point(p_ptr, b * k + i, inv_two_var, radius, height, width, add);
        }
      }
    });
  });
  return mask;
}

at::Tensor gaussian_splat_backward_cpu(const at::Tensor& grad,
                                       const at::Tensor& points, double stddev,
                                       int64_t height, int64_t width,
                                       double tolerance) {
  const char* op = "_gaussian_splat_backward";
  detail::check_gaussian_splat_args(op, points, stddev, height, width,
                                    tolerance);
  const int64_t batch = points.size(0), k = points.size(1);
  detail::check_gaussian_splat_grad(op, grad, points, height, width);
  at::Tensor grad_points = at::zeros({batch, k, 2}, points.options());
  if (grad_points.numel() == 0) return grad_points;
  const at::Tensor p = points.contiguous();
  const at::Tensor g = grad.contiguous();
  const double inv_two_var = 1.0 / (2.0 * stddev * stddev);
  const double radius = splat_cutoff_radius(stddev, tolerance);
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "gaussian_splat_backward_cpu",
                             [&] {
    const scalar_t* p_ptr = p.data_ptr<scalar_t>();
    const scalar_t* g_ptr = g.data_ptr<scalar_t>();
    scalar_t* out = grad_points.data_ptr<scalar_t>();
    at::parallel_for(0, batch * k, 16, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        double gy, gx;
        splat_point_gradient(p_ptr, g_ptr + t / k * height * width, t,
                             inv_two_var, radius, height, width, &gy, &gx);
        out[t * 2] = static_cast<scalar_t>(gy);
        out[t * 2 + 1] = static_cast<scalar_t>(gx);
      }
    });
  });
  return grad_points;
}

}  // namespace

TORCH_LIBRARY_IMPL(indexgrad, CPU, m) {
  m.impl("gaussian_splat", TORCH_FN(gaussian_splat_cpu));
  m.impl("_gaussian_splat_backward", TORCH_FN(gaussian_splat_backward_cpu));
}

}  // namespace indexgrad
