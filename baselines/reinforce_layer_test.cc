// Tests of the REINFORCE baseline: the surrogate's gradient is the score
// function estimate (checked against the closed form for one sample), the
// moving-average baseline, evaluation mode, bad input; and on average the
// estimate points along the true gradient of E[loss] (1-D analytic case).
#include "baselines/reinforce_layer.h"

#include <gtest/gtest.h>

#include "kernels/testing/expect_error.h"

namespace indexgrad {
namespace baselines {
namespace {

TEST(ReinforceSparseLayer, SurrogateGradientIsScoreFunction) {
  at::manual_seed(0);
  ReinforceSparseLayer layer(
      ReinforceSparseLayerOptions({6}, {6}, 3).use_baseline(false));
  layer->to(at::kDouble);
  const at::Tensor x = at::randn({1, 6}, at::kDouble);
  const at::Tensor y = layer->forward(x);
  const at::Tensor loss = (y - x).pow(2).mean(1);  // [1]
  layer->zero_grad();
  layer->score_surrogate(loss).backward();
  // d/dmu of L * log N(c | mu, sigma) = L (c - mu) / sigma, and
  // d mu / d raw = 5 s (1 - s) with s = mu / 5: recover the sample c from
  // the gradient, round it, and rebuild y = W(c) x with loops.
  const at::Tensor mu = layer->means().detach();
  const at::Tensor sigma = layer->sigmas().detach();
  const at::Tensor s = mu / 5;
  const at::Tensor c = mu + layer->raw_means.grad() / (5 * s * (1 - s)) *
                                sigma / loss.item<double>();
  const at::Tensor tuples = at::floor(c + 0.5).clamp(0, 5).to(at::kLong);
  at::Tensor expected = at::zeros({1, 6}, at::kDouble);
  for (int64_t i = 0; i < 3; ++i) {
    expected[0][tuples[i][0].item<int64_t>()] +=
        layer->values[i].item<double>() * x[0][tuples[i][1].item<int64_t>()];
  }
  EXPECT_TRUE(at::allclose(y.detach(), expected, 1e-6, 1e-9))
      << y << expected << c;
  // Values get no gradient from the surrogate.
  EXPECT_FALSE(layer->values.grad().defined() &&
               layer->values.grad().abs().sum().item<double>() > 0);
}

TEST(ReinforceSparseLayer, EstimateFollowsTrueGradientOnAverage) {
  // One tuple in a 1 x 9 row; loss = (x[col] - target)^2 with x = one-hot
  // at column 6: E[loss] falls as the mean moves towards 6, so the averaged
  // estimate of d E[L] / d raw_means[0][1] must be negative.
  at::manual_seed(1);
  ReinforceSparseLayer layer(ReinforceSparseLayerOptions({1}, {9}, 1));
  layer->to(at::kDouble);
  {
    at::NoGradGuard g;
    layer->raw_means.zero_();  // mean (0, 4)
  }
  at::Tensor x = at::zeros({256, 9}, at::kDouble);
  x.select(1, 6).fill_(1.0);
  double total = 0;
  for (int rep = 0; rep < 20; ++rep) {
    layer->zero_grad();
    const at::Tensor y = layer->forward(x);  // [256, 1]
    const at::Tensor loss = (y.squeeze(1) - 1).pow(2);
    layer->score_surrogate(loss).backward();
    total += layer->raw_means.grad()[0][1].item<double>();
  }
  EXPECT_LT(total, 0);
}

TEST(ReinforceSparseLayer, MovingAverageBaseline) {
  ReinforceSparseLayer layer(
      ReinforceSparseLayerOptions({4}, {4}, 2).baseline_decay(0.5));
  const at::Tensor x = at::randn({3, 4});
  layer->forward(x);
  layer->score_surrogate(at::full({3}, 2.0));
  EXPECT_FLOAT_EQ(layer->baseline.item<float>(), 2.0f);  // first: the mean
  layer->forward(x);
  layer->score_surrogate(at::full({3}, 4.0));
  EXPECT_FLOAT_EQ(layer->baseline.item<float>(), 3.0f);  // 0.5 * 2 + 0.5 * 4
}

TEST(ReinforceSparseLayer, EvalModeAndErrors) {
  ReinforceSparseLayer layer(ReinforceSparseLayerOptions({4}, {4}, 4));
  layer->eval();
  const at::Tensor x = at::randn({2, 4});
  EXPECT_TRUE(at::allclose(layer->forward(x), layer->forward(x)));
  EXPECT_ERROR_CONTAINS(layer->score_surrogate(at::ones({2})),
                        "call forward() in training mode first");
  layer->train();
  layer->forward(x);
  EXPECT_ERROR_CONTAINS(layer->score_surrogate(at::ones({3})),
                        "per_row_loss must be [2], got [3]");
  EXPECT_ERROR_CONTAINS(layer->forward(at::randn({2, 5})),
                        "x must be [batch, 4], got [2, 5]");
  EXPECT_ERROR_CONTAINS(
      ReinforceSparseLayer(ReinforceSparseLayerOptions({4}, {4}, 1).baseline_decay(1.0)),
      "baseline_decay must be in [0, 1)");
}

}  // namespace
}  // namespace baselines
}  // namespace indexgrad
