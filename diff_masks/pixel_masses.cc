#include "diff_masks/pixel_masses.h"

#include <cmath>

namespace indexgrad {
namespace diff_masks {

namespace {

void CheckCentres(const at::Tensor& centres, int64_t n) {
  TORCH_CHECK(centres.dim() == 1 && centres.is_floating_point(),
              "PixelMasses: centres must be a 1-D floating tensor, got ", centres.dim(),
              "-D ", centres.scalar_type());
  TORCH_CHECK(n >= 1, "PixelMasses: n must be >= 1, got ", n);
}

// inv_scale: 1 / (stddev sqrt 2), a number or [K, 1].
template <typename Scale>
at::Tensor Masses(const at::Tensor& centres, const Scale& inv_scale, int64_t n) {
  // erf at the n + 1 pixel edges; a pixel's mass is the difference of two
  // neighbours (the factor 1/2 of the normal CDF cancels in the ratio).
  const at::Tensor edges = at::arange(n + 1, centres.options()) - 0.5;
  const at::Tensor cdf = at::erf((edges.unsqueeze(0) - centres.unsqueeze(1)) * inv_scale);
  const at::Tensor mass = cdf.narrow(1, 1, n) - cdf.narrow(1, 0, n);  // [K, n]
  return mass / (cdf.narrow(1, n, 1) - cdf.narrow(1, 0, 1));
}

}  // namespace

at::Tensor PixelMasses(const at::Tensor& centres, const at::Tensor& stddevs, int64_t n) {
  CheckCentres(centres, n);
  TORCH_CHECK(stddevs.dim() == 1 && stddevs.size(0) == centres.size(0),
              "PixelMasses: stddevs must be [", centres.size(0), "], got ", stddevs.sizes());
  if (stddevs.numel() > 0) {
    const double lo = stddevs.min().item<double>(), hi = stddevs.max().item<double>();
    TORCH_CHECK(lo > 0 && std::isfinite(hi), "PixelMasses: stddevs must be finite and > 0, got ",
                "values in [", lo, ", ", hi, "]");
  }
  const at::Tensor inv = (stddevs.to(centres.scalar_type()) * std::sqrt(2.0)).reciprocal();
  return Masses(centres, inv.unsqueeze(1), n);
}

at::Tensor PixelMasses(const at::Tensor& centres, double stddev, int64_t n) {
  TORCH_CHECK(stddev > 0 && std::isfinite(stddev), "PixelMasses: stddev must be > 0, got ",
              stddev);
  CheckCentres(centres, n);
  return Masses(centres, 1.0 / (stddev * std::sqrt(2.0)), n);
}

at::Tensor PointPixelMasses(const at::Tensor& points, const at::Tensor& stddevs,
                            int64_t height, int64_t width) {
  TORCH_CHECK(points.dim() == 2 && points.size(1) == 2,
              "PointPixelMasses: points must be [K, 2], got ", points.sizes());
  TORCH_CHECK(stddevs.dim() == 1 && stddevs.size(0) == points.size(0),
              "PointPixelMasses: stddevs must be [", points.size(0), "], got ", stddevs.sizes());
  const at::Tensor rows = PixelMasses(points.select(1, 0), stddevs, height);
  const at::Tensor cols = PixelMasses(points.select(1, 1), stddevs, width);
  return (rows.unsqueeze(2) * cols.unsqueeze(1)).flatten(1);
}

}  // namespace diff_masks
}  // namespace indexgrad
