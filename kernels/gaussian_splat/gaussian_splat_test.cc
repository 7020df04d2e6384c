// Tests of gaussian_splat: the dense formula with loops, sparse within the
// documented tolerance, cut-off respected, points on and outside borders,
// finite-difference gradients in double, bad input.
#include "kernels/gaussian_splat/gaussian_splat.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cmath>

#include "kernels/testing/expect_error.h"
#include "kernels/testing/gradcheck.h"

namespace indexgrad {
namespace {

const auto kDouble = at::TensorOptions().dtype(at::kDouble);

at::Tensor loop_reference(const at::Tensor& points, double stddev, int64_t h,
                          int64_t w) {
  at::Tensor m = at::zeros({points.size(0), h, w}, kDouble);
  auto P = points.accessor<double, 3>();
  auto M = m.accessor<double, 3>();
  for (int64_t b = 0; b < points.size(0); ++b)
    for (int64_t k = 0; k < points.size(1); ++k)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          const double dy = y - P[b][k][0], dx = x - P[b][k][1];
          M[b][y][x] += std::exp(-(dy * dy + dx * dx) / (2 * stddev * stddev));
        }
  return m;
}

TEST(GaussianSplat, DenseMatchesLoops) {
  at::manual_seed(0);
  // Some points outside the image and on its borders.
  const at::Tensor points = at::rand({2, 7, 2}, kDouble) * 14 - 2;
  const at::Tensor m = gaussian_splat(points, 1.3, 9, 11, 0.0);
  EXPECT_TRUE(at::allclose(m, loop_reference(points, 1.3, 9, 11), 1e-12, 1e-14));
}

TEST(GaussianSplat, SparseWithinToleranceAndCutOff) {
  at::manual_seed(1);
  const at::Tensor points = at::rand({3, 20, 2}, kDouble) * 31;
  const at::Tensor dense = gaussian_splat(points, 0.8, 32, 32, 0.0);
  for (double tol : {1e-3, 1e-6, 1e-9}) {
    const at::Tensor sparse = gaussian_splat(points, 0.8, 32, 32, tol);
    // Each point drops less than `tol` per pixel.
    EXPECT_LE((sparse - dense).abs().max().item<double>(), 20 * tol);
    EXPECT_LE(sparse.sub(dense).max().item<double>(), 0.0);
  }
  // One point at (5, 5), stddev 1, tolerance 1e-2: radius sqrt(2 ln 100) =
  // 3.03 pixels. (5, 8) is inside, (5, 9) and (8, 8) outside.
  const at::Tensor one = at::tensor({5.0, 5.0}, kDouble).reshape({1, 1, 2});
  const at::Tensor m = gaussian_splat(one, 1.0, 12, 12, 1e-2);
  EXPECT_NEAR(m[0][5][8].item<double>(), std::exp(-4.5), 1e-12);
  EXPECT_EQ(m[0][5][9].item<double>(), 0.0);
  EXPECT_EQ(m[0][8][8].item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(m[0][5][5].item<double>(), 1.0);
}

// Points far outside the image, up to and past the int64 range, with a
// cut-off: nothing drawn (and no hang), the in-range point as alone.
TEST(GaussianSplat, HugeCoordinatesDrawNothingAndReturn) {
  const at::Tensor points =
      at::tensor({1e19, 3.0, 3.0, -1e30, 1e300, 1e300, -9.3e18, 2.0, 4.0, 5.0}, kDouble)
          .reshape({1, 5, 2});
  const at::Tensor m = gaussian_splat(points, 1.0, 8, 8, 1e-6);
  const at::Tensor alone = gaussian_splat(points.narrow(1, 4, 1), 1.0, 8, 8, 1e-6);
  EXPECT_TRUE(at::equal(m, alone));
  EXPECT_DOUBLE_EQ(m[0][4][5].item<double>(), 1.0);
  // The backward's ranges too: zero gradient for the far points.
  const at::Tensor p = points.clone().requires_grad_();
  gaussian_splat(p, 1.0, 8, 8, 1e-6).sum().backward();
  EXPECT_EQ(p.grad().narrow(1, 0, 4).abs().max().item<double>(), 0.0);
}

TEST(GaussianSplat, GradientsMatchFiniteDifferences) {
  at::manual_seed(2);
  const at::Tensor points = at::rand({2, 5, 2}, kDouble) * 9 - 0.5;
  for (double tol : {0.0, 1e-12}) {
    auto f = [&](const std::vector<at::Tensor>& in) {
      return gaussian_splat(in[0], 1.1, 8, 9, tol);
    };
    EXPECT_LT(testing::max_gradient_error(f, {points}, 0), 1e-7) << tol;
  }
}

TEST(GaussianSplat, CudaEqualsCpu) {
  // The CUDA threads run the CPU loop's bodies (splat_point,
  // splat_point_gradient), checked above against the loops; here the
  // launch: atomics in the forward, within rounding of the CPU's sums.
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  at::manual_seed(3);
  for (auto dtype : {at::kDouble, at::kFloat}) {
    const at::Tensor points = (at::rand({3, 200, 2}, kDouble) * 70 - 3).to(dtype);
    const at::Tensor grad = at::randn({3, 64, 64}, kDouble).to(dtype);
    const double rtol = dtype == at::kDouble ? 1e-12 : 1e-5;
    for (double tol : {0.0, 1e-6}) {
      const at::Tensor cpu = gaussian_splat(points, 1.5, 64, 64, tol);
      const at::Tensor gpu = gaussian_splat(points.cuda(), 1.5, 64, 64, tol);
      EXPECT_TRUE(at::allclose(gpu.cpu(), cpu, rtol, rtol)) << tol;
      const at::Tensor g_cpu =
          detail::_gaussian_splat_backward(grad, points, 1.5, 64, 64, tol);
      const at::Tensor g_gpu = detail::_gaussian_splat_backward(
          grad.cuda(), points.cuda(), 1.5, 64, 64, tol);
      // Each thread owns its point: the same sums in the same order.
      EXPECT_TRUE(at::allclose(g_gpu.cpu(), g_cpu, rtol, rtol)) << tol;
    }
  }
}

TEST(GaussianSplat, BadInputNamesTheArgument) {
  const at::Tensor p = at::zeros({1, 3, 2}, kDouble);
  EXPECT_ERROR_CONTAINS(gaussian_splat(p, 0.0, 4, 4, 0.0),
                        "stddev must be a positive finite number, got 0");
  EXPECT_ERROR_CONTAINS(gaussian_splat(p, 1.0, 0, 4, 0.0),
                        "height and width must be positive");
  EXPECT_ERROR_CONTAINS(gaussian_splat(p, 1.0, 4, 4, 1.0),
                        "tolerance must be in [0, 1)");
  EXPECT_ERROR_CONTAINS(gaussian_splat(at::zeros({1, 3, 3}, kDouble), 1.0, 4, 4, 0.0),
                        "points must be [batch, k, 2]");
  at::Tensor nan = p.clone();
  nan[0][1][0] = NAN;
  EXPECT_ERROR_CONTAINS(gaussian_splat(nan, 1.0, 4, 4, 0.0),
                        "points contain NaN or infinity");
  EXPECT_ERROR_CONTAINS(gaussian_splat(p.to(at::kLong), 1.0, 4, 4, 0.0),
                        "points must have dtype float or double");
}

}  // namespace
}  // namespace indexgrad
