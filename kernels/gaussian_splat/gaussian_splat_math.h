// Per-pixel math of gaussian_splat, shared by the CPU kernel and a future
// CUDA kernel (no torch headers).
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

// First and last pixel index in [0, size) within `radius` of `center`.
INDEXGRAD_HD void splat_range(double center, double radius, int64_t size,
                              int64_t* first, int64_t* last) {
  double lo = ceil(center - radius), hi = floor(center + radius);
  *first = lo < 0 ? 0 : static_cast<int64_t>(lo);
  *last = hi > size - 1 ? size - 1 : static_cast<int64_t>(hi);
}

// Pixels of the box that are also inside the disc (radius may be infinite).
INDEXGRAD_HD bool splat_in_reach(double dy, double dx, double radius) {
  return dy * dy + dx * dx <= radius * radius;
}

INDEXGRAD_HD double splat_weight(double dy, double dx, double inv_two_var) {
  return exp(-(dy * dy + dx * dx) * inv_two_var);
}

}  // namespace indexgrad
