// Per-pair math of spread_values, shared by the CPU kernel and a future CUDA
// kernel (no torch headers).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"

namespace indexgrad {

// Squared Mahalanobis distance of integer point t from (mu, sigma), sigma a
// per-dimension variance.
template <typename scalar_t>
INDEXGRAD_HD double mahalanobis_sq(const int64_t* t, const scalar_t* mu,
                                   const scalar_t* sigma, int rank) {
  double m = 0;
  for (int d = 0; d < rank; ++d) {
    const double diff = static_cast<double>(t[d]) - static_cast<double>(mu[d]);
    m += diff * diff / static_cast<double>(sigma[d]);
  }
  return m;
}

// Relative weight of a point at distance m when the tuple's nearest point is
// at m0 <= m: exp(-(m - m0) / 2), in (0, 1].
INDEXGRAD_HD double relative_weight(double m, double m0) {
  return exp(-0.5 * (m - m0));
}

// The cut-off R^2 for n points in a chunk and a tolerance (> 0): every point
// beyond m0 + R^2 weighs below tolerance / n of the nearest one.
INDEXGRAD_HD double cutoff_sq(int64_t n, double tolerance) {
  return 2.0 * log(static_cast<double>(n > 1 ? n : 1) / tolerance);
}

}  // namespace indexgrad
