// Tests of the tuple parametrisation: means and variances against their
// formulas computed element by element, finite-difference gradients in
// double, rounding half up, the uniform initial means, the index space,
// the layer-input check and the sampling seeds.
#include "sparse_hyper/parametrisation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <vector>

#include "kernels/testing/expect_error.h"
#include "kernels/testing/gradcheck.h"

namespace indexgrad {
namespace sparse_hyper {
namespace {

const auto kDouble = at::TensorOptions().dtype(at::kDouble);

double Sigmoid(double x) { return 1 / (1 + std::exp(-x)); }
double Softplus(double x) { return std::log1p(std::exp(x)); }

TEST(MeansFromRaw, MatchSigmoidTimesSizeMinusOneElementByElement) {
  at::manual_seed(0);
  const std::vector<double> size_minus_one = {4, 0, 9.5};
  const at::Tensor raw = at::randn({2, 5, 3}, kDouble) * 3;
  raw[0][0][0] = 40.0;   // saturates at the top: size - 1
  raw[0][0][2] = -40.0;  // and at the bottom: 0
  const at::Tensor means = MeansFromRaw(raw, at::tensor(size_minus_one, kDouble));
  ASSERT_EQ(means.sizes(), raw.sizes());
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t i = 0; i < 5; ++i) {
      for (int64_t d = 0; d < 3; ++d) {
        const double expect = Sigmoid(raw[b][i][d].item<double>()) * size_minus_one[d];
        EXPECT_NEAR(means[b][i][d].item<double>(), expect, 1e-12) << b << " " << i << " " << d;
      }
    }
  }
  EXPECT_NEAR(means[0][0][0].item<double>(), 4.0, 1e-12);
  EXPECT_NEAR(means[0][0][2].item<double>(), 0.0, 1e-12);
  // Raw 0 is the middle of the range.
  EXPECT_NEAR(MeansFromRaw(at::zeros({1, 3}, kDouble), at::tensor(size_minus_one, kDouble))[0][2]
                  .item<double>(),
              4.75, 1e-15);
}

TEST(MeansFromRaw, GradientMatchesFiniteDifferences) {
  at::manual_seed(1);
  const at::Tensor raw = at::randn({4, 2}, kDouble) * 2;
  const at::Tensor size_minus_one = at::tensor({7.0, 3.0}, kDouble);
  auto f = [&](const std::vector<at::Tensor>& in) { return MeansFromRaw(in[0], size_minus_one); };
  EXPECT_LT(testing::max_gradient_error(f, {raw}, /*wrt=*/0), 1e-8);
  // The analytic derivative sigma'(raw) (size - 1) by hand, at one element.
  const at::Tensor r = raw.clone().requires_grad_();
  MeansFromRaw(r, size_minus_one)[2][1].backward();
  const double s = Sigmoid(raw[2][1].item<double>());
  EXPECT_NEAR(r.grad()[2][1].item<double>(), s * (1 - s) * 3.0, 1e-14);
  EXPECT_EQ(r.grad().abs().sum().item<double>(), r.grad()[2][1].abs().item<double>());
}

TEST(VariancesFromRaw, MatchSoftplusFormulaElementByElement) {
  at::manual_seed(2);
  const std::vector<double> size = {5, 1, 12};
  const double sigma_scale = 0.2, min_sigma = 0.05;
  const at::Tensor raw = at::randn({2, 4}, kDouble) * 4;
  raw[1][3] = -60.0;  // softplus -> 0: the variance is min_sigma
  const at::Tensor var = VariancesFromRaw(raw, at::tensor(size, kDouble), sigma_scale, min_sigma);
  ASSERT_EQ(var.sizes(), (at::IntArrayRef{2, 4, 3}));
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t i = 0; i < 4; ++i) {
      for (int64_t d = 0; d < 3; ++d) {
        const double expect =
            Softplus(raw[b][i].item<double>() + 2) * size[d] * sigma_scale + min_sigma;
        EXPECT_NEAR(var[b][i][d].item<double>(), expect, 1e-12 * expect)
            << b << " " << i << " " << d;
      }
    }
  }
  EXPECT_NEAR(var[1][3][2].item<double>(), min_sigma, 1e-15);
  // Raw 0: softplus(2) = log(1 + e^2) per unit of size and scale.
  const at::Tensor at_zero = VariancesFromRaw(at::zeros({1}, kDouble), at::tensor({10.0}, kDouble),
                                              /*sigma_scale=*/0.5, /*min_sigma=*/0);
  EXPECT_NEAR(at_zero[0][0].item<double>(), std::log(1 + std::exp(2.0)) * 5, 1e-13);
  EXPECT_TRUE((var > 0).all().item<bool>());
}

TEST(VariancesFromRaw, GradientMatchesFiniteDifferences) {
  at::manual_seed(3);
  const at::Tensor raw = at::randn({3, 2}, kDouble) * 2;
  const at::Tensor size = at::tensor({6.0, 4.0, 9.0}, kDouble);
  auto f = [&](const std::vector<at::Tensor>& in) {
    return VariancesFromRaw(in[0], size, /*sigma_scale=*/0.3, /*min_sigma=*/0.1);
  };
  EXPECT_LT(testing::max_gradient_error(f, {raw}, /*wrt=*/0), 1e-8);
  // d/draw sum_d var_d = sigmoid(raw + 2) * scale * sum(size), by hand.
  const at::Tensor r = raw.clone().requires_grad_();
  VariancesFromRaw(r, size, 0.3, 0.1)[1][0].sum().backward();
  EXPECT_NEAR(r.grad()[1][0].item<double>(), Sigmoid(raw[1][0].item<double>() + 2) * 0.3 * 19.0,
              1e-13);
}

TEST(RoundHalfUp, KnownCasesAndNoGradient) {
  const at::Tensor means =
      at::tensor({0.0, 0.49, 0.5, 1.5, 2.5, 2.4999, 3.51, -0.5, -0.51, 7.0}, kDouble)
          .requires_grad_();
  const at::Tensor r = RoundHalfUp(means);
  EXPECT_EQ(r.scalar_type(), at::kLong);
  EXPECT_FALSE(r.requires_grad());
  const std::vector<int64_t> expect = {0, 0, 1, 2, 3, 2, 4, 0, -1, 7};
  for (size_t i = 0; i < expect.size(); ++i) {
    EXPECT_EQ(r[i].item<int64_t>(), expect[i]) << "mean " << means[i].item<double>();
  }
  // Float input and trailing shape kept.
  const at::Tensor f = RoundHalfUp(at::tensor({1.5f, 2.49f, 3.5f, 0.5f}).view({2, 2}));
  EXPECT_TRUE(f.equal(at::tensor(std::vector<int64_t>{2, 2, 4, 1}).view({2, 2})));
}

TEST(UniformRawMeans, SigmoidIsUniformWithinTheMargins) {
  at::manual_seed(4);
  const int64_t k = 4000, r = 3;
  const at::Tensor raw = UniformRawMeans(k, r);
  ASSERT_EQ(raw.sizes(), (at::IntArrayRef{k, r}));
  const at::Tensor u = at::sigmoid(raw.to(at::kDouble));
  // u = 0.02 + 0.96 U[0, 1): never in the outer 2% of the range.
  EXPECT_GE(u.min().item<double>(), 0.02 - 1e-6);
  EXPECT_LE(u.max().item<double>(), 0.98 + 1e-6);
  // Uniform: each of 8 equal bins of [0.02, 0.98] holds about k r / 8.
  const at::Tensor bins = ((u - 0.02) / 0.96 * 8).floor().clamp(0, 7).to(at::kLong).view(-1);
  const at::Tensor counts = at::bincount(bins, {}, 8);
  const double expect = double(k * r) / 8;  // 1500, binomial sd about 36
  for (int64_t j = 0; j < 8; ++j) {
    EXPECT_NEAR(counts[j].item<int64_t>(), expect, 200) << "bin " << j;
  }
  // Independent draws: different calls give different means.
  EXPECT_FALSE(at::equal(UniformRawMeans(5, 2), UniformRawMeans(5, 2)));
}

TEST(IndexSpace, ConcatenatesOutThenInAndNamesTheCaller) {
  EXPECT_EQ(IndexSpace("Op", {3}, {4, 5}), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(IndexSpace("Op", {2, 1}, {6}), (std::vector<int64_t>{2, 1, 6}));
  EXPECT_ERROR_CONTAINS(
      IndexSpace("MyLayer", {}, {3}),
      "MyLayer: out_shape and in_shape need at least one dimension each, got [] and [3]");
  EXPECT_ERROR_CONTAINS(IndexSpace("MyLayer", {4}, {}),
                        "need at least one dimension each, got [4] and []");
  EXPECT_ERROR_CONTAINS(IndexSpace("MyLayer", {4}, {0, 2}),
                        "MyLayer: out_shape and in_shape must be positive, got [4, 0, 2]");
  EXPECT_ERROR_CONTAINS(IndexSpace("MyLayer", {-1}, {2}), "must be positive, got [-1, 2]");
}

TEST(CheckLayerInput, AcceptsBatchTimesInShapeOnly) {
  CheckLayerInput("Op", at::zeros({2, 3, 4}), {3, 4});
  CheckLayerInput("Op", at::zeros({0, 5}), {5});  // empty batch is a batch
  EXPECT_ERROR_CONTAINS(CheckLayerInput("MyLayer", at::zeros({2, 4, 3}), {3, 4}),
                        "MyLayer: x must be [batch, 3, 4], got [2, 4, 3]");
  EXPECT_ERROR_CONTAINS(CheckLayerInput("MyLayer", at::zeros({12}), {3, 4}),
                        "x must be [batch, 3, 4], got [12]");
  EXPECT_ERROR_CONTAINS(CheckLayerInput("MyLayer", at::zeros({2, 3, 4, 1}), {3, 4}),
                        "x must be [batch, 3, 4], got [2, 3, 4, 1]");
}

TEST(DrawSeed, StreamsOfDifferentLayerSeedsNeverMeet) {
  EXPECT_EQ(DrawSeed(/*layer_seed=*/0, /*stream=*/5), 5);
  EXPECT_EQ(DrawSeed(/*layer_seed=*/2, /*stream=*/7), 2000013);
  std::set<int64_t> seen;
  for (int64_t seed = 0; seed < 4; ++seed) {
    for (int64_t stream = 0; stream < 2000; ++stream) {
      EXPECT_TRUE(seen.insert(DrawSeed(seed, stream)).second) << seed << " " << stream;
    }
  }
}

}  // namespace
}  // namespace sparse_hyper
}  // namespace indexgrad
