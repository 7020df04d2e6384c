#include "baselines/reinforce_mask.h"

#include <gtest/gtest.h>
#include <torch/optim/adam.h>

#include "diff_masks/oracle.h"
#include "kernels/testing/expect_error.h"

namespace indexgrad {
namespace baselines {
namespace {

TEST(ReinforceMaskOperator, SampledMaskAndScoreGradient) {
  at::manual_seed(0);
  ReinforceMaskOperator op(ReinforceMaskOptions(4, 4, 3).use_baseline(false));
  const at::Tensor m = op->Mask();
  const int64_t on = m.sum().item<int64_t>();
  EXPECT_GE(on, 1);
  EXPECT_LE(on, 3);
  EXPECT_TRUE((m.eq(0) | m.eq(1)).all().item<bool>());
  op->ScoreSurrogate(at::tensor(2.0)).backward();
  // d/dlogits of 2 * sum_i log softmax(logits_i)[pick_i] = 2 (onehot - p):
  // per row the gradient sums to zero and is 2 (1 - 1/16) at the pick.
  const at::Tensor g = op->logits.grad();
  EXPECT_TRUE(at::allclose(g.sum(1), at::zeros({3}), 1e-6, 1e-6));
  EXPECT_NEAR(g.max().item<float>(), 2.0 * (1 - 1.0 / 16), 1e-5);
}

TEST(ReinforceMaskOperator, LearnsASmallTarget) {
  at::manual_seed(1);
  auto oracle = *diff_masks::MaskOracle::Create(diff_masks::TargetKind::kLeftHalf, 4, 4, 0);
  ReinforceMaskOperator op(ReinforceMaskOptions(4, 4, oracle.target_pixels()));
  torch::optim::Adam adam(op->parameters(), torch::optim::AdamOptions(0.1));
  for (int s = 0; s < 400; ++s) {
    adam.zero_grad();
    op->ScoreSurrogate(oracle.Mse(op->Mask())).backward();
    adam.step();
  }
  double iou = 0;
  for (int i = 0; i < 20; ++i) iou += oracle.Score(op->Mask()).iou / 20;
  EXPECT_GT(iou, 0.6);  // random masks of 8 picks score about 0.3
}

TEST(ReinforceMaskOperator, Errors) {
  ReinforceMaskOperator op(ReinforceMaskOptions(4, 4, 2));
  EXPECT_ERROR_CONTAINS(op->ScoreSurrogate(at::tensor(1.0)), "call Mask() first");
  op->Mask();
  EXPECT_ERROR_CONTAINS(op->ScoreSurrogate(at::ones({2})), "loss must be a scalar");
  EXPECT_ERROR_CONTAINS(ReinforceMaskOperator(ReinforceMaskOptions(4, 4, 0)),
                        "k must be >= 1");
}

TEST(ReinforceMaskOperator, FromTheFactoryItsObjectiveIsTheSurrogate) {
  diff_masks::MaskOperatorFactory factory;
  AddReinforceMaskOperator(factory);
  auto op = factory.Make("reinforce", 6, 6, 4, diff_masks::OperatorSettings());
  ASSERT_TRUE(op.ok()) << op.status();
  auto* rf = dynamic_cast<ReinforceMaskOperatorImpl*>(op->get());
  ASSERT_NE(rf, nullptr);
  auto oracle = *diff_masks::MaskOracle::Create(diff_masks::TargetKind::kLeftHalf, 6, 6, 0);
  at::manual_seed(3);
  // The first call sets the moving baseline to its loss (a zero surrogate);
  // later samples with other losses move the logits.
  for (int i = 0; i < 5; ++i) {
    const at::Tensor mse = oracle.Mse((*op)->Mask());
    EXPECT_FALSE(mse.requires_grad());  // a sampled mask: no path through it
    (*op)->Objective(mse).backward();   // the score function's path
  }
  EXPECT_GT(rf->logits.grad().abs().sum().item<double>(), 0);
  // Its indices: each distribution's most likely pixel, (row, column).
  const at::Tensor idx = (*op)->Indices();
  EXPECT_TRUE(idx.select(1, 0).mul(6).add(idx.select(1, 1)).equal(rf->logits.argmax(1)));
}

}  // namespace
}  // namespace baselines
}  // namespace indexgrad
