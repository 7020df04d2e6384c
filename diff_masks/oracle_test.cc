#include "diff_masks/oracle.h"

#include <gtest/gtest.h>

#include "kernels/testing/expect_error.h"

namespace indexgrad {
namespace diff_masks {
namespace {

TEST(MaskOracle, TargetsHaveTheirShapes) {
  auto left = MaskOracle::Create(TargetKind::kLeftHalf, 32, 32, 0);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->target_pixels(), 512);
  auto rnd = MaskOracle::Create(TargetKind::kRandomPixels, 32, 32, 3, 100);
  ASSERT_TRUE(rnd.ok());
  EXPECT_EQ(rnd->target_pixels(), 100);
  auto disc = MaskOracle::Create(TargetKind::kDisc, 32, 32, 0);
  ASSERT_TRUE(disc.ok());
  // Radius 8 around the centre: about pi * 64 = 201 pixels.
  EXPECT_NEAR(disc->target_pixels(), 201, 15);
  at::Tensor digit = at::zeros({28, 28});
  digit.slice(0, 10, 14).fill_(0.9);  // a 4 x 28 bar
  auto d = MaskOracle::Create(TargetKind::kDigit, 32, 32, 0, 0, digit);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->target_pixels(), 4 * 28);
}

TEST(MaskOracle, MseAndScoresOfKnownMasks) {
  auto left = *MaskOracle::Create(TargetKind::kLeftHalf, 4, 4, 0);
  // All ones: half the pixels wrong by 1.
  EXPECT_FLOAT_EQ(left.Mse(at::ones({4, 4})).item<float>(), 0.5f);
  at::Tensor exact = at::zeros({4, 4});
  exact.slice(1, 0, 2).fill_(0.9);
  EXPECT_NEAR(left.Mse(exact).item<float>(), 0.5 * 0.01, 1e-6);
  EXPECT_DOUBLE_EQ(left.Score(exact).iou, 1.0);
  EXPECT_DOUBLE_EQ(left.Score(at::ones({4, 4})).iou, 0.5);
  EXPECT_DOUBLE_EQ(left.Score(at::ones({4, 4})).accuracy, 0.5);
  // Random targets differ by seed.
  auto a = *MaskOracle::Create(TargetKind::kRandomPixels, 8, 8, 1, 10);
  auto b = *MaskOracle::Create(TargetKind::kRandomPixels, 8, 8, 2, 10);
  const at::Tensor probe = at::rand({8, 8});
  EXPECT_NE(a.Mse(probe).item<float>(), b.Mse(probe).item<float>());
}

TEST(MaskOracle, GradientOfMseIsTheOnlySignal) {
  auto left = *MaskOracle::Create(TargetKind::kLeftHalf, 4, 4, 0);
  const at::Tensor m = at::full({4, 4}, 0.5).requires_grad_();
  left.Mse(m).backward();
  // d MSE / d M = 2 (M - M*) / 16: negative on the target, positive off it.
  EXPECT_LT(m.grad()[0][0].item<float>(), 0);
  EXPECT_GT(m.grad()[0][3].item<float>(), 0);
}

TEST(MaskOracle, BadInput) {
  auto left = *MaskOracle::Create(TargetKind::kLeftHalf, 4, 4, 0);
  EXPECT_ERROR_CONTAINS(left.Mse(at::ones({4, 5})),
                        "mask must be [4, 4], got [4, 5]");
  at::Tensor nan = at::ones({4, 4});
  nan[1][1] = NAN;
  EXPECT_ERROR_CONTAINS(left.Mse(nan), "mask contains NaN");
  EXPECT_ERROR_CONTAINS(left.Score(at::ones({4, 4}, at::kLong)),
                        "mask must be floating point");
  EXPECT_FALSE(MaskOracle::Create(TargetKind::kRandomPixels, 4, 4, 0, 17).ok());
  EXPECT_FALSE(MaskOracle::Create(TargetKind::kDigit, 32, 32, 0).ok());
  EXPECT_FALSE(MaskOracle::Create(TargetKind::kLeftHalf, 1, 4, 0).ok());
  EXPECT_FALSE(ParseTargetKind("square").ok());
  EXPECT_EQ(*ParseTargetKind("disc"), TargetKind::kDisc);
}

}  // namespace
}  // namespace diff_masks
}  // namespace indexgrad
