// Per-point math of gaussian_splat, shared by the CPU kernel and the CUDA
// kernel (no torch headers): splat_point and splat_point_gradient are the
// whole work of one CUDA thread and of one CPU loop iteration, so the CPU
// tests against the dense formula check the GPU's arithmetic too.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"

namespace indexgrad {

// Half-width in pixels beyond which a Gaussian of std `stddev` is below
// `tolerance` (> 0) of its peak.
INDEXGRAD_HD double splat_radius(double stddev, double tolerance) {
  return stddev * sqrt(2.0 * log(1.0 / tolerance));
}

// The radius every kernel draws within: splat_radius, or infinity (every
// pixel, wherever the point is) when dense (tolerance 0).
INDEXGRAD_HD double splat_cutoff_radius(double stddev, double tolerance) {
  return tolerance == 0 ? HUGE_VAL : splat_radius(stddev, tolerance);
}

// First and last pixel index in [0, size) within `radius` of `center`;
// first > last when there is none. Clamped to the axis in double before the
// cast to int64, so that a finite center of any size (beyond the int64
// range, say 1e19) gives a valid, possibly empty, range.
INDEXGRAD_HD void splat_range(double center, double radius, int64_t size,
                              int64_t* first, int64_t* last) {
  double lo = ceil(center - radius), hi = floor(center + radius);
  if (lo < 0) lo = 0;
  if (hi > static_cast<double>(size - 1)) hi = static_cast<double>(size - 1);
  if (lo > hi) {
    *first = 0;
    *last = -1;
    return;
  }
  *first = static_cast<int64_t>(lo);
  *last = static_cast<int64_t>(hi);
}

// Pixels of the box that are also inside the disc (radius may be infinite).
INDEXGRAD_HD bool splat_in_reach(double dy, double dx, double radius) {
  return dy * dy + dx * dx <= radius * radius;
}

INDEXGRAD_HD double splat_weight(double dy, double dx, double inv_two_var) {
  return exp(-(dy * dy + dx * dx) * inv_two_var);
}

// Point t (flat over batch * k; points [batch * k, 2], (row, column)) drawn
// into its row's mask: add(pixel, weight) for every pixel y * width + x
// within `radius` (infinite: every pixel). The CPU adds in place; a CUDA
// thread per point adds atomically.
template <typename scalar_t, typename Add>
INDEXGRAD_HD void splat_point(const scalar_t* points, int64_t t,
                              double inv_two_var, double radius,
                              int64_t height, int64_t width, Add& add) {
  const double py = static_cast<double>(points[t * 2]);
  const double px = static_cast<double>(points[t * 2 + 1]);
  int64_t y0, y1, x0, x1;
  splat_range(py, radius, height, &y0, &y1);
  splat_range(px, radius, width, &x0, &x1);
  for (int64_t y = y0; y <= y1; ++y) {
    for (int64_t x = x0; x <= x1; ++x) {
      if (!splat_in_reach(y - py, x - px, radius)) continue;
      add(y * width + x, splat_weight(y - py, x - px, inv_two_var));
    }
  }
}

// Point t's gradient (row, column) from the incoming gradient `g` of its
// row's mask [height, width]: d/dp exp(-|q - p|^2 / (2 s^2)) = weight
// (q - p) / s^2, summed over the pixels in reach. Each point owns its
// output: deterministic on both devices.
template <typename scalar_t>
INDEXGRAD_HD void splat_point_gradient(const scalar_t* points,
                                       const scalar_t* g, int64_t t,
                                       double inv_two_var, double radius,
                                       int64_t height, int64_t width,
                                       double* grad_y, double* grad_x) {
  const double py = static_cast<double>(points[t * 2]);
  const double px = static_cast<double>(points[t * 2 + 1]);
  const double inv_var = 2.0 * inv_two_var;
  int64_t y0, y1, x0, x1;
  splat_range(py, radius, height, &y0, &y1);
  splat_range(px, radius, width, &x0, &x1);
  double gy = 0, gx = 0;
  for (int64_t y = y0; y <= y1; ++y) {
    for (int64_t x = x0; x <= x1; ++x) {
      if (!splat_in_reach(y - py, x - px, radius)) continue;
      const double c = static_cast<double>(g[y * width + x]) *
                       splat_weight(y - py, x - px, inv_two_var) * inv_var;
      gy += c * (y - py);
      gx += c * (x - px);
    }
  }
  *grad_y = gy;
  *grad_x = gx;
}

}  // namespace indexgrad
