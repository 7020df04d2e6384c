#include "diff_masks/mask_operator.h"

#include <gtest/gtest.h>
#include <torch/optim/adam.h>

#include "diff_masks/operator_factory.h"
#include "diff_masks/oracle.h"
#include "kernels/testing/expect_error.h"

namespace indexgrad {
namespace diff_masks {
namespace {

TEST(GaussianMaskOperator, MaskInUnitIntervalWithStraightThroughGradient) {
  at::manual_seed(0);
  GaussianMaskOperator op(GaussianMaskOptions(8, 8, 20).stddev_start(1.5));
  const at::Tensor m = op->Mask();
  EXPECT_EQ(m.sizes(), at::IntArrayRef({8, 8}));
  EXPECT_GE(m.min().item<float>(), 0.0f);
  EXPECT_LE(m.max().item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(m.max().item<float>(), 1.0f);  // 20 wide Gaussians overlap
  // Even where the sum is clamped, the gradient reaches the points.
  (m * at::randn({8, 8})).sum().backward();
  EXPECT_GT(op->points.grad().abs().min().item<float>(), 0.0f);
}

TEST(GaussianMaskOperator, StddevAnneals) {
  GaussianMaskOperator op(GaussianMaskOptions(8, 8, 4)
                              .stddev_start(2.0)
                              .stddev_end(0.5)
                              .anneal_fraction(0.5));
  op->SetProgress(0, 100);
  EXPECT_DOUBLE_EQ(op->stddev(), 2.0);
  op->SetProgress(25, 100);
  EXPECT_NEAR(op->stddev(), 1.0, 1e-12);
  op->SetProgress(80, 100);
  EXPECT_DOUBLE_EQ(op->stddev(), 0.5);
}

TEST(GaussianMaskOperator, LearnsASmallDiscThroughTheOracle) {
  // 12 x 12 disc of radius 3 (29 pixels) through the oracle's MSE alone,
  // with the experiment's settings. Measured: IoU 1.0 after 600 steps from
  // about 0.3 at the random start (0.73 without the margin and the noise).
  at::manual_seed(1);
  auto oracle = *MaskOracle::Create(TargetKind::kDisc, 12, 12, 0);
  GaussianMaskOperator op(GaussianMaskOptions(12, 12, oracle.target_pixels())
                              .stddev_start(1.0)
                              .stddev_end(0.5)
                              .anneal_fraction(0.5));
  torch::optim::Adam adam(op->parameters(), torch::optim::AdamOptions(0.02));
  op->SetProgress(0, 1);
  const double start_iou = oracle.Score(op->Mask()).iou;
  const int64_t steps = 600;
  for (int64_t s = 0; s < steps; ++s) {
    op->SetProgress(s, steps);
    adam.zero_grad();
    oracle.Mse(op->Mask()).backward();
    adam.step();
    op->AfterStep();
  }
  const double iou = oracle.Score(op->Mask()).iou;
  EXPECT_GE(iou, 0.99) << "start " << start_iou;
  EXPECT_LT(start_iou, 0.6);
}

TEST(GaussianMaskOperator, NoiseDecaysAndPointsStayWithinTheMargin) {
  at::manual_seed(3);
  GaussianMaskOperator op(
      GaussianMaskOptions(6, 6, 50).noise(2.0).margin(1.0).anneal_fraction(0.5));
  op->SetProgress(0, 100);
  EXPECT_DOUBLE_EQ(op->noise(), 2.0);
  op->SetProgress(25, 100);
  EXPECT_NEAR(op->noise(), 1.0, 1e-12);
  const at::Tensor before = op->points.detach().clone();
  op->AfterStep();  // std 1 noise on 100 coordinates: they all move
  EXPECT_GT((op->points - before).abs().min().item<float>(), 0.0f);
  for (int i = 0; i < 20; ++i) op->AfterStep();
  EXPECT_GE(op->points.min().item<float>(), -1.0f);
  EXPECT_LE(op->points.max().item<float>(), 6.0f);
  EXPECT_LT(op->points.min().item<float>(), 0.0f);  // some left the image
  op->SetProgress(60, 100);
  EXPECT_DOUBLE_EQ(op->noise(), 0.0);
  const at::Tensor settled = op->points.detach().clone();
  op->AfterStep();
  EXPECT_TRUE(op->points.equal(settled));
}

TEST(GaussianMaskOperator, BadOptions) {
  EXPECT_ERROR_CONTAINS(GaussianMaskOperator(GaussianMaskOptions(8, 8, 0)),
                        "k must be >= 1, got 0");
  EXPECT_ERROR_CONTAINS(
      GaussianMaskOperator(GaussianMaskOptions(8, 8, 2).stddev_end(0)),
      "stddev_start and stddev_end must be > 0");
  EXPECT_ERROR_CONTAINS(GaussianMaskOperator(GaussianMaskOptions(8, 8, 2).margin(-1)),
                        "margin and noise must be >= 0, got -1");
}

TEST(GumbelMaskOperator, AtMostKPixelsAndGradientReachesNetwork) {
  at::manual_seed(2);
  GumbelMaskOperator op(GumbelMaskOptions(8, 8, 5).channels(4));
  const at::Tensor m = op->Mask();
  EXPECT_EQ(m.sizes(), at::IntArrayRef({8, 8}));
  // One pixel per channel: between 1 and k pixels on, values in {0, 1}.
  const int64_t on = m.gt(0.5).sum().item<int64_t>();
  EXPECT_GE(on, 1);
  EXPECT_LE(on, 5);
  EXPECT_TRUE((m.eq(0) | m.eq(1)).all().item<bool>());
  (m * at::randn({8, 8})).sum().backward();
  double total = 0;
  for (const auto& p : op->parameters()) total += p.grad().abs().sum().item<double>();
  EXPECT_GT(total, 0.0);
}

TEST(GumbelMaskOperator, LearnsASmallTargetThroughTheOracle) {
  at::manual_seed(3);
  auto oracle = *MaskOracle::Create(TargetKind::kLeftHalf, 8, 8, 0);
  GumbelMaskOperator op(GumbelMaskOptions(8, 8, oracle.target_pixels()).channels(8));
  torch::optim::Adam adam(op->parameters(), torch::optim::AdamOptions(0.01));
  // Mean IoU of 20 sampled masks (the operator is stochastic).
  auto mean_iou = [&] {
    at::NoGradGuard g;
    double total = 0;
    for (int i = 0; i < 20; ++i) total += oracle.Score(op->Mask()).iou;
    return total / 20;
  };
  const double start_iou = mean_iou();
  for (int s = 0; s < 300; ++s) {
    adam.zero_grad();
    oracle.Mse(op->Mask()).backward();
    adam.step();
  }
  const double iou = mean_iou();
  EXPECT_GT(iou, start_iou + 0.1) << "start " << start_iou << " end " << iou;
}

TEST(GumbelMaskOperator, BadOptions) {
  EXPECT_ERROR_CONTAINS(GumbelMaskOperator(GumbelMaskOptions(10, 8, 2)),
                        "multiples of 4, got 10 x 8");
  EXPECT_ERROR_CONTAINS(GumbelMaskOperator(GumbelMaskOptions(8, 8, 2).temperature(0)),
                        "temperature must be > 0");
}

TEST(MaskOperators, IndicesAreThePixelsTheirPointsStandFor) {
  GaussianMaskOperator g(GaussianMaskOptions(8, 8, 3));
  {
    at::NoGradGuard no_grad;
    g->points.copy_(at::tensor({0.49f, 2.5f, 7.2f, -1.6f, 3.0f, 8.7f}).view({3, 2}));
  }
  EXPECT_TRUE(g->Indices().equal(
      at::tensor(std::vector<int64_t>{0, 3, 7, -2, 3, 9}).view({3, 2})));
  GumbelMaskOperator gumbel(GumbelMaskOptions(8, 12, 4));
  const at::Tensor flat = gumbel->Logits().argmax(1);
  const at::Tensor idx = gumbel->Indices();
  EXPECT_TRUE(idx.select(1, 0).mul(12).add(idx.select(1, 1)).equal(flat));
  EXPECT_TRUE(idx.select(1, 1).lt(12).all().item<bool>());
}

TEST(MaskOperatorFactory, MakesOperatorsByName) {
  MaskOperatorFactory factory;
  EXPECT_EQ(factory.Names(), (std::vector<std::string>{"gaussian", "gumbel", "mlp"}));
  OperatorSettings settings;
  settings.stddev_start = 1.5;
  auto gaussian = factory.Make("gaussian", 8, 12, 5, settings);
  ASSERT_TRUE(gaussian.ok()) << gaussian.status();
  auto* g = dynamic_cast<GaussianMaskOperatorImpl*>(gaussian->get());
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->stddev(), 1.5);
  EXPECT_EQ(g->points.sizes(), (at::IntArrayRef{5, 2}));
  EXPECT_EQ((*gaussian)->Mask().sizes(), (at::IntArrayRef{8, 12}));
  auto gumbel = factory.Make("gumbel", 8, 8, 3, settings);
  ASSERT_TRUE(gumbel.ok()) << gumbel.status();
  EXPECT_NE(dynamic_cast<GumbelMaskOperatorImpl*>(gumbel->get()), nullptr);
  // A differentiable operator's objective is the MSE itself.
  const at::Tensor mse = at::tensor(0.25);
  EXPECT_TRUE((*gaussian)->Objective(mse).equal(mse));
  // Users add their own.
  factory.Add("fixed", [](int64_t h, int64_t w, int64_t k, const OperatorSettings&) {
    return std::shared_ptr<MaskOperator>(
        GaussianMaskOperator(GaussianMaskOptions(h, w, k)).ptr());
  });
  EXPECT_TRUE(factory.Has("fixed"));
}

TEST(MaskOperatorFactory, ErrorsNameTheOperatorAndTheKnownNames) {
  MaskOperatorFactory factory;
  OperatorSettings settings;
  EXPECT_EQ(factory.Make("gausian", 8, 8, 3, settings).status().message(),
            "unknown mask operator 'gausian' (known: gaussian, gumbel, mlp)");
  const std::string no_decoder(
      factory.Make("mlp", 8, 8, 3, settings).status().message());
  EXPECT_NE(no_decoder.find("MlpMaskOperator: needs a trained decoder"),
            std::string::npos)
      << no_decoder;
  settings.stddev_end = 0;
  const std::string bad(factory.Make("gaussian", 8, 8, 3, settings).status().message());
  EXPECT_NE(bad.find("stddev_start and stddev_end must be > 0"), std::string::npos) << bad;
  const std::string odd(factory.Make("gumbel", 10, 10, 3, OperatorSettings()).status().message());
  EXPECT_NE(odd.find("GumbelMaskOperator"), std::string::npos) << odd;
}

}  // namespace
}  // namespace diff_masks
}  // namespace indexgrad
