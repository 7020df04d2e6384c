// CPU kernel of gaussian_splat: each point draws only the pixels within its
// cut-off radius. Forward parallel over the batch (points of a row add into
// the same mask); backward parallel over points (each owns its gradient).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <limits>

#include "kernels/gaussian_splat/gaussian_splat.h"
#include "kernels/gaussian_splat/gaussian_splat_math.h"

namespace indexgrad {
namespace {

struct Window {
  int64_t y0, y1, x0, x1;  // inclusive pixel ranges
};

Window window_of(double py, double px, double radius, int64_t height,
                 int64_t width) {
  Window w;
  splat_range(py, radius, height, &w.y0, &w.y1);
  splat_range(px, radius, width, &w.x0, &w.x1);
  return w;
}

double radius_for(double stddev, double tolerance) {
  // Dense: every pixel, wherever the point is.
  return tolerance == 0 ? std::numeric_limits<double>::infinity()
                        : splat_radius(stddev, tolerance);
}

at::Tensor gaussian_splat_cpu(const at::Tensor& points, double stddev,
                              int64_t height, int64_t width, double tolerance) {
  detail::check_gaussian_splat_args("gaussian_splat", points, stddev, height,
                                    width, tolerance);
  const int64_t batch = points.size(0), k = points.size(1);
  at::Tensor mask = at::zeros({batch, height, width}, points.options());
  if (mask.numel() == 0 || k == 0) return mask;
  const at::Tensor p = points.contiguous();
  const double inv_two_var = 1.0 / (2.0 * stddev * stddev);
  const double radius = radius_for(stddev, tolerance);
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "gaussian_splat_cpu", [&] {
    const scalar_t* p_ptr = p.data_ptr<scalar_t>();
    scalar_t* m_ptr = mask.data_ptr<scalar_t>();
    at::parallel_for(0, batch, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        scalar_t* m = m_ptr + b * height * width;  // [height, width]
        for (int64_t i = 0; i < k; ++i) {
          const double py = p_ptr[(b * k + i) * 2];
          const double px = p_ptr[(b * k + i) * 2 + 1];
          const Window w = window_of(py, px, radius, height, width);
          for (int64_t y = w.y0; y <= w.y1; ++y) {
            for (int64_t x = w.x0; x <= w.x1; ++x) {
              if (!splat_in_reach(y - py, x - px, radius)) continue;
              m[y * width + x] += static_cast<scalar_t>(
                  splat_weight(y - py, x - px, inv_two_var));
            }
          }
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
  TORCH_CHECK(grad.dim() == 3 && grad.size(0) == batch &&
                  grad.size(1) == height && grad.size(2) == width,
              op, ": grad must be [", batch, ", ", height, ", ", width,
              "], got ", grad.sizes());
  TORCH_CHECK(grad.scalar_type() == points.scalar_type(), op,
              ": grad must have the dtype of points, got ", grad.scalar_type());
  at::Tensor grad_points = at::zeros({batch, k, 2}, points.options());
  if (grad_points.numel() == 0) return grad_points;
  const at::Tensor p = points.contiguous();
  const at::Tensor g = grad.contiguous();
  const double inv_two_var = 1.0 / (2.0 * stddev * stddev);
  const double inv_var = 1.0 / (stddev * stddev);
  const double radius = radius_for(stddev, tolerance);
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "gaussian_splat_backward_cpu",
                             [&] {
    const scalar_t* p_ptr = p.data_ptr<scalar_t>();
    const scalar_t* g_ptr = g.data_ptr<scalar_t>();
    scalar_t* out = grad_points.data_ptr<scalar_t>();
    at::parallel_for(0, batch * k, 16, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / k;
        const scalar_t* gb = g_ptr + b * height * width;
        const double py = p_ptr[t * 2], px = p_ptr[t * 2 + 1];
        const Window w = window_of(py, px, radius, height, width);
        double gy = 0, gx = 0;
        for (int64_t y = w.y0; y <= w.y1; ++y) {
          for (int64_t x = w.x0; x <= w.x1; ++x) {
            if (!splat_in_reach(y - py, x - px, radius)) continue;
            // d/dp exp(-|q - p|^2 / (2 s^2)) = weight * (q - p) / s^2
            const double c = gb[y * width + x] *
                             splat_weight(y - py, x - px, inv_two_var) * inv_var;
            gy += c * (y - py);
            gx += c * (x - px);
          }
        }
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
