#include "diff_masks/pixel_masses.h"

#include <gtest/gtest.h>

#include <cmath>

#include "kernels/testing/expect_error.h"

namespace indexgrad {
namespace diff_masks {
namespace {

// Reference: the normal CDF by std::erf, pixel by pixel, in double.
double ReferenceMass(double centre, double stddev, int64_t pixel, int64_t n) {
  auto cdf = [&](double x) { return 0.5 * (1 + std::erf((x - centre) / (stddev * std::sqrt(2.0)))); };
  return (cdf(pixel + 0.5) - cdf(pixel - 0.5)) / (cdf(n - 0.5) - cdf(-0.5));
}

TEST(PixelMasses, MatchAPixelByPixelReferenceAndSumToOne) {
  const at::Tensor centres = at::tensor({0.0, 3.3, -0.49, 6.49, 2.5}, at::kDouble);
  for (double stddev : {0.1, 0.7, 5.0}) {
    const at::Tensor m = PixelMasses(centres, stddev, 7);
    ASSERT_EQ(m.sizes(), (at::IntArrayRef{5, 7}));
    for (int64_t k = 0; k < 5; ++k) {
      for (int64_t i = 0; i < 7; ++i) {
        EXPECT_NEAR(m[k][i].item<double>(),
                    ReferenceMass(centres[k].item<double>(), stddev, i, 7), 1e-12)
            << "stddev " << stddev << " point " << k << " pixel " << i;
      }
    }
    EXPECT_LT((m.sum(1) - 1).abs().max().item<double>(), 1e-12);
  }
  // Narrow: the point's own pixel holds nearly everything (1 - 2 Phi(-5)).
  EXPECT_NEAR(PixelMasses(at::tensor({3.0}, at::kDouble), 0.1, 7)[0][3].item<double>(), 1.0,
              1e-6);
}

TEST(PixelMasses, GradientsMatchFiniteDifferences) {
  const at::Tensor centres = at::tensor({0.2, 3.7, 5.9}, at::kDouble).requires_grad_();
  const at::Tensor weights = at::randn({3, 6}, at::kDouble);
  auto f = [&](const at::Tensor& c) { return (PixelMasses(c, 0.8, 6) * weights).sum(); };
  f(centres).backward();
  const double h = 1e-6;
  for (int64_t k = 0; k < 3; ++k) {
    at::Tensor up = centres.detach().clone(), down = centres.detach().clone();
    up[k] += h;
    down[k] -= h;
    const double numeric = (f(up).item<double>() - f(down).item<double>()) / (2 * h);
    EXPECT_NEAR(centres.grad()[k].item<double>(), numeric, 1e-8) << k;
  }
  EXPECT_ERROR_CONTAINS(PixelMasses(centres.detach(), 0, 6), "stddev must be > 0, got 0");
  EXPECT_ERROR_CONTAINS(
      PixelMasses(centres.detach(), at::tensor({1.0, 0.0, 2.0}, at::kDouble), 6),
      "stddevs must be finite and > 0, got values in [0, 2]");
  EXPECT_ERROR_CONTAINS(
      PixelMasses(centres.detach(), at::tensor({1.0, NAN, 2.0}, at::kDouble), 6),
      "stddevs must be finite and > 0");
  // One stddev per centre: each row as the scalar overload computes it.
  const at::Tensor stddevs = at::tensor({0.3, 1.0, 4.0}, at::kDouble);
  const at::Tensor per_point = PixelMasses(centres.detach(), stddevs, 6);
  for (int64_t k = 0; k < 3; ++k) {
    EXPECT_LT((per_point[k] -
               PixelMasses(centres.detach().narrow(0, k, 1), stddevs[k].item<double>(), 6)[0])
                  .abs()
                  .max()
                  .item<double>(),
              1e-15)
        << k;
  }
  EXPECT_ERROR_CONTAINS(PixelMasses(centres.detach().view({3, 1}), 1, 6),
                        "centres must be a 1-D floating tensor, got 2-D");
}

}  // namespace
}  // namespace diff_masks
}  // namespace indexgrad
