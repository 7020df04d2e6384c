// The pixel masses of isotropic Gaussians: what the Gaussian mask operator
// renders and what the MLP operator's decoder learns to render.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace indexgrad {
namespace diff_masks {

// Along one axis: centres [K] (pixels), stddev > 0 -> [K, n], row k the
// Gaussian N(centres[k], stddev^2) integrated over [i - 0.5, i + 0.5] for
// pixel i, divided by its integral over [-0.5, n - 0.5] (rows sum to 1).
// Differentiable in the centres.
at::Tensor PixelMasses(const at::Tensor& centres, double stddev, int64_t n);
// The same with one stddev per centre: stddevs [K], all > 0.
at::Tensor PixelMasses(const at::Tensor& centres, const at::Tensor& stddevs, int64_t n);

// In 2-D (separable): points [K, 2] (row, column, pixels), stddevs [K] ->
// [K, height * width], each row summing to 1.
at::Tensor PointPixelMasses(const at::Tensor& points, const at::Tensor& stddevs,
                            int64_t height, int64_t width);

}  // namespace diff_masks
}  // namespace indexgrad
