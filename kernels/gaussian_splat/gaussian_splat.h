// gaussian_splat: a soft mask from K isotropic 2-D Gaussians (the Gaussian
// mask operator of Shekhar et al. 2023, method 2).
//
//   mask[b, y, x] = sum_k exp(-((y - p_k0)^2 + (x - p_k1)^2) / (2 stddev^2))
//
// points [batch, k, 2] float/double: (row, column) in pixel units, any real
//        value (pixels outside the image are simply not drawn).
// stddev  > 0: standard deviation in pixels (the paper's covariance
//        (1/delta) I is stddev^2 = 1/delta).
// tolerance in [0, 1): pixels where a Gaussian is below `tolerance` are
//        skipped, i.e. only a disc of radius stddev * sqrt(2 ln(1/tolerance))
//        around each point is evaluated (0: every pixel, dense).
// returns [batch, height, width], not clamped (the operator clamps).
// Differentiable in points (backward op `_gaussian_splat_backward`).
#pragma once

#include <ATen/ATen.h>

namespace indexgrad {

at::Tensor gaussian_splat(const at::Tensor& points, double stddev,
                          int64_t height, int64_t width, double tolerance);

namespace detail {

// Returns grad_points [batch, k, 2].
at::Tensor _gaussian_splat_backward(const at::Tensor& grad,
                                    const at::Tensor& points, double stddev,
                                    int64_t height, int64_t width,
                                    double tolerance);

void check_gaussian_splat_args(const char* op, const at::Tensor& points,
                               double stddev, int64_t height, int64_t width,
                               double tolerance);

// The backward's incoming gradient: [batch, height, width], the dtype and
// device of points.
void check_gaussian_splat_grad(const char* op, const at::Tensor& grad,
                               const at::Tensor& points, int64_t height, int64_t width);

}  // namespace detail
}  // namespace indexgrad
