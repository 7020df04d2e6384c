#include "diff_masks/mask_decoder.h"

#include <gtest/gtest.h>
#include <torch/optim/adam.h>
#include <torch/serialize/archive.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "diff_masks/mlp_mask.h"
#include "diff_masks/optimizer_state.h"
#include "diff_masks/oracle.h"
#include "diff_masks/pixel_masses.h"
#include "kernels/testing/expect_error.h"

namespace indexgrad {
namespace diff_masks {
namespace {

TEST(MasksOfCoordinates, MatchesRoundingLoop) {
  at::manual_seed(0);
  const int64_t h = 5, w = 7;
  const at::Tensor coords = at::rand({3, 6, 2}, at::kDouble);
  const at::Tensor masks = MasksOfCoordinates(coords, h, w);
  ASSERT_EQ(masks.sizes(), at::IntArrayRef({3, h, w}));
  for (int64_t b = 0; b < 3; ++b) {
    at::Tensor want = at::zeros({h, w}, at::kDouble);
    for (int64_t k = 0; k < 6; ++k) {
      const double r = coords[b][k][0].item<double>() * (h - 1);
      const double c = coords[b][k][1].item<double>() * (w - 1);
      want[static_cast<int64_t>(std::floor(r + 0.5))][static_cast<int64_t>(std::floor(c + 0.5))] = 1;
    }
    EXPECT_TRUE(masks[b].equal(want)) << "mask " << b;
  }
  // Corners and a half-way point (rounds up).
  const at::Tensor corners =
      at::tensor({0.0, 0.0, 1.0, 1.0, 0.125, 0.5 / 6}, at::kDouble).view({1, 3, 2});
  const at::Tensor m = MasksOfCoordinates(corners, h, w)[0];
  EXPECT_EQ(m.sum().item<double>(), 3);
  EXPECT_EQ(m[0][0].item<double>(), 1);
  EXPECT_EQ(m[h - 1][w - 1].item<double>(), 1);
  EXPECT_EQ(m[1][1].item<double>(), 1);  // (0.5, 0.5) pixels -> (1, 1)
}

TEST(MaskDecoder, EncodingHasPixelPeriodsAndTheStddev) {
  MaskDecoder d(MaskDecoderOptions(32, 32));
  EXPECT_EQ(d->frequencies(), 6);  // 2^6 = 64 >= 2 * 32
  EXPECT_EQ(d->max_stddev(), 8.0);  // a quarter of 32
  // Pixel (3, 0): the period-2 cosine is cos(pi * 3) = -1, cos(0) = 1.
  const at::Tensor coords = at::tensor({3.0 / 31, 0.0}, at::kDouble).view({1, 2});
  const at::Tensor e = d->Encode(coords, at::tensor({2.0}, at::kDouble));
  ASSERT_EQ(e.sizes(), at::IntArrayRef({1, 2 + 4 * 6 + 2}));
  // Layout: coords (2), sin of row f, sin of col f, cos of row f, cos of
  // col f, log stddev, stddev / 32.
  EXPECT_NEAR(e[0][2 + 12].item<double>(), -1.0, 1e-12);
  EXPECT_NEAR(e[0][2 + 12 + 6].item<double>(), 1.0, 1e-12);
  EXPECT_NEAR(e[0][2].item<double>(), 0.0, 1e-12);  // sin(pi * 3)
  EXPECT_NEAR(e[0][26].item<double>(), std::log(2.0), 1e-12);
  EXPECT_NEAR(e[0][27].item<double>(), 2.0 / 32, 1e-12);
}

TEST(MaskDecoder, RenderIsTheSumOfPointDistributions) {
  at::manual_seed(0);
  MaskDecoder d(MaskDecoderOptions(4, 6).hidden(16).blocks(1));
  d->to(at::kDouble);
  d->eval();
  const at::Tensor coords = at::rand({2, 3, 2}, at::kDouble);
  for (double stddev : {0.15, 1.5}) {
    const at::Tensor m = d->Render(coords, stddev);
    ASSERT_EQ(m.sizes(), at::IntArrayRef({2, 4, 6}));
    for (int64_t b = 0; b < 2; ++b) {
      const at::Tensor logits = d->PointLogits(coords[b], at::full({3}, stddev, at::kDouble));
      for (int64_t px = 0; px < 24; ++px) {
        double sum = 0;
        for (int64_t k = 0; k < 3; ++k) {
          double z = 0;
          for (int64_t q = 0; q < 24; ++q) z += std::exp(logits[k][q].item<double>());
          sum += std::exp(logits[k][px].item<double>()) / z;
        }
        EXPECT_NEAR(m[b][px / 6][px % 6].item<double>(), sum, 1e-12) << "stddev " << stddev;
      }
    }
    EXPECT_NEAR(m.sum().item<double>(), 6.0, 1e-9);  // 2 x 3 points, one unit each
  }
}

TEST(MaskDecoder, BadInputIsAnError) {
  EXPECT_ERROR_CONTAINS(MaskDecoder(MaskDecoderOptions(0, 4)), "height and width");
  EXPECT_ERROR_CONTAINS(MaskDecoder(MaskDecoderOptions(4, 4).frequencies(40)),
                        "frequencies");
  EXPECT_ERROR_CONTAINS(MaskDecoder(MaskDecoderOptions(4, 4).min_stddev(0)),
                        "min_stddev must be > 0");
  EXPECT_ERROR_CONTAINS(MaskDecoder(MaskDecoderOptions(4, 4).min_stddev(2).max_stddev(1)),
                        "max_stddev (1) must be >= min_stddev (2)");
  MaskDecoder d(MaskDecoderOptions(4, 4).hidden(8));
  EXPECT_ERROR_CONTAINS(d->Render(at::rand({3, 2}), 0.5), "coords must be [B, K, 2]");
  EXPECT_ERROR_CONTAINS(d->Render(at::zeros({1, 3, 2}, at::kLong), 0.5), "floating point");
  EXPECT_ERROR_CONTAINS(d->Render(at::rand({1, 3, 2}), 0.1),
                        "stddev must be within the trained range [0.15, 1], got 0.1");
  EXPECT_ERROR_CONTAINS(MlpMaskOperator(MlpMaskOptions(8, 8, 3), d), "4 x 4");
  EXPECT_ERROR_CONTAINS(MlpMaskOperator(MlpMaskOptions(4, 4, 0), d), "k must be >= 1");
  EXPECT_ERROR_CONTAINS(MlpMaskOperator(MlpMaskOptions(4, 4, 2).stddev_start(3), d),
                        "within the decoder's trained range [0.15, 1]");
}

TEST(MaskDecoder, SaveLoadRoundTripAndMismatch) {
  at::manual_seed(0);
  const std::string path =
      (std::filesystem::path(::testing::TempDir()) / "decoder_test.pt").string();
  MaskDecoder d(MaskDecoderOptions(6, 6).hidden(8).blocks(1));
  d->eval();
  ASSERT_TRUE(SaveMaskDecoder(*d, path).ok());
  auto loaded = LoadMaskDecoder(path, MaskDecoderOptions(6, 6).hidden(8).blocks(1));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  (*loaded)->eval();
  const at::Tensor coords = at::rand({1, 4, 2});
  EXPECT_TRUE((*loaded)->Render(coords, 0.5).equal(d->Render(coords, 0.5)));

  auto wrong = LoadMaskDecoder(path, MaskDecoderOptions(6, 6).hidden(16).blocks(1));
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("hidden 8"), std::string::npos)
      << wrong.status();
  // A file of the earlier format (five int64 options) is named as such.
  {
    torch::serialize::OutputArchive archive;
    archive.write("indexgrad_mask_decoder_options", at::tensor({6, 6, 8, 1, 4}, at::kLong),
                  /*is_buffer=*/true);
    archive.save_to(path);
  }
  auto old = LoadMaskDecoder(path, MaskDecoderOptions(6, 6).hidden(8).blocks(1));
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.status().message().find("older format"), std::string::npos) << old.status();
  auto missing = LoadMaskDecoder(path + ".missing", MaskDecoderOptions(6, 6));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("train_mask_decoder -- --size=6"),
            std::string::npos)
      << missing.status();
}

TEST(MlpMaskOperator, OnlyThePointsLearnAndTheDecoderStaysInEvaluation) {
  at::manual_seed(0);
  MaskDecoder d(MaskDecoderOptions(6, 6).hidden(8).blocks(1));
  MlpMaskOperator op(MlpMaskOptions(6, 6, 3), d);
  op->train();
  EXPECT_FALSE(op->decoder->is_training());
  const at::Tensor m = op->Mask();
  ASSERT_EQ(m.sizes(), at::IntArrayRef({6, 6}));
  EXPECT_GE(m.min().item<float>(), 0.0f);
  EXPECT_NEAR(m.sum().item<float>(), 3.0f, 1e-4);
  (m * at::randn({6, 6})).sum().backward();
  EXPECT_GT(op->points.grad().abs().sum().item<float>(), 0.0f);
  for (const at::Tensor& p : op->decoder->parameters()) {
    EXPECT_FALSE(p.requires_grad());
    EXPECT_FALSE(p.grad().defined());
  }
}

TEST(MlpMaskOperator, StddevAnnealsOverTheDecodersRange) {
  MaskDecoder d(MaskDecoderOptions(4, 4).hidden(8).min_stddev(0.25).max_stddev(4));
  MlpMaskOperator op(MlpMaskOptions(4, 4, 2).anneal_fraction(0.5), d);
  EXPECT_DOUBLE_EQ(op->stddev(), 4.0);  // 0: the decoder's ends
  op->SetProgress(25, 100);
  EXPECT_NEAR(op->stddev(), 1.0, 1e-12);
  op->SetProgress(90, 100);
  EXPECT_DOUBLE_EQ(op->stddev(), 0.25);
}

// After a short training at a small size the decoder renders Gaussian
// pixel masses (at the narrow end: the points' own pixels), and the frozen
// decoder recovers a target through the oracle, index by index.
TEST(MaskDecoder, ShortTrainingRendersPixelMassesAndRecoversATarget) {
  at::manual_seed(0);
  const int64_t size = 8;
  MaskDecoder d(MaskDecoderOptions(size, size).hidden(128).blocks(2));
  const double before = EvaluateMaskDecoder(*d, 4, 64, 7).iou;
  torch::optim::Adam adam(d->parameters(), torch::optim::AdamOptions(3e-3));
  const auto start = std::chrono::steady_clock::now();
  const int64_t steps = 4000;
  for (int64_t s = 0; s < steps; ++s) {  // cosine decay, as train_mask_decoder
    const double lr = 3e-3 * 0.5 * (1 + std::cos(M_PI * double(s) / double(steps)));
    for (auto& group : adam.param_groups()) {
      static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
    }
    TrainMaskDecoderStep(*d, adam, 128);
  }
  const MaskDecoderScores after = EvaluateMaskDecoder(*d, 4, 64, 7);
  std::printf("decoder %lldx%lld: IoU %.3f -> %.3f, pixel accuracy %.3f, %lld steps in %.1f s\n",
              (long long)size, (long long)size, before, after.iou, after.pixel_accuracy,
              (long long)steps,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  EXPECT_LT(before, 0.2);
  // Even exact pixel masses split a point near a pixel edge between two
  // pixels (both below 0.5 at the edge), so the IoU of thresholded masks
  // stays below 1; the share of points on their own pixel is the sharp test.
  EXPECT_GT(after.iou, 0.8);
  EXPECT_GT(after.pixel_accuracy, 0.95);
  // A wide point against the exact masses (total variation distance).
  d->eval();
  const at::Tensor point = at::tensor({0.4f, 0.7f}).view({1, 1, 2});
  const at::Tensor exact = PointPixelMasses(point.view({1, 2}) * (size - 1),
                                            at::full({1}, 1.5), size, size).view({size, size});
  at::Tensor drawn;
  {
    at::NoGradGuard no_grad;
    drawn = d->Render(point, 1.5)[0];
  }
  EXPECT_LT(0.5 * (drawn - exact).abs().sum().item<double>(), 0.1);

  auto oracle = *MaskOracle::Create(TargetKind::kLeftHalf, size, size, 0);
  MlpMaskOperator op(MlpMaskOptions(size, size, oracle.target_pixels()), d);
  const double start_iou = oracle.IndexIoU(op->Indices());
  torch::optim::Adam points(op->parameters(), torch::optim::AdamOptions(0.01));
  const int64_t recovery = 600;
  for (int64_t s = 0; s < recovery; ++s) {
    op->SetProgress(s, recovery);
    points.zero_grad();
    oracle.Mse(op->Mask()).backward();
    points.step();
    op->AfterStep();
    RestartMoments(*op, points);
  }
  EXPECT_LT(start_iou, 0.6);
  EXPECT_GE(oracle.IndexIoU(op->Indices()), 0.99) << "start " << start_iou;
}

// The Gaussian operator's rescue, with each point's share of its fullest
// pixel read from its decoded distribution.
TEST(MlpMaskOperator, RescuesDoubledPointsAtTheStartingStddev) {
  at::manual_seed(0);
  MaskDecoder d(MaskDecoderOptions(8, 8).hidden(8).min_stddev(0.25).max_stddev(2));
  MlpMaskOperator op(MlpMaskOptions(8, 8, 3)
                         .anneal_fraction(0.5)
                         .rescue_every(10)
                         .rescue_steps(20)
                         .rescue_peak(0),  // an untrained decoder spreads every point
                     d);
  {
    at::NoGradGuard no_grad;
    // Points 0 and 1 both round to pixel (2, 2) of the 8 x 8 image.
    op->points.copy_(at::tensor({2.1f / 7, 2.0f / 7, 1.9f / 7, 2.2f / 7, 0.9f, 0.9f}).view({3, 2}));
  }
  op->SetProgress(39, 100);  // the stddev is still annealing: no rescue
  op->AfterStep();
  EXPECT_EQ(op->rescued_at.max().item<int64_t>(), -1);
  op->SetProgress(59, 100);
  op->AfterStep();
  EXPECT_TRUE(op->rescued_at.equal(at::tensor({-1, 60, -1}, at::kLong))) << op->rescued_at;
  const std::vector<MaskOperator::Rows> rows = op->RestartedRows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(rows[0].rows.equal(at::tensor({1}, at::kLong)));
  op->SetProgress(60, 100);
  EXPECT_DOUBLE_EQ(op->PointStddevs()[1].item<double>(), 2.0);   // the decoder's maximum
  EXPECT_DOUBLE_EQ(op->PointStddevs()[0].item<double>(), 0.25);
  // The mask decodes each point at its own stddev: point 1 as a lone
  // point at 2.0, the others at 0.25.
  at::Tensor mask, alone, narrow;
  {
    at::NoGradGuard no_grad;
    mask = op->Mask();
    alone = d->Render(op->points.detach().narrow(0, 1, 1).unsqueeze(0), 2.0)[0];
    const at::Tensor others = op->points.detach().index_select(0, at::tensor({0, 2}));
    narrow = d->Render(others.unsqueeze(0), 0.25)[0];
  }
  EXPECT_TRUE(at::allclose(mask, alone + narrow, 1e-5, 1e-6));
  EXPECT_ERROR_CONTAINS(
      MlpMaskOperator(MlpMaskOptions(8, 8, 3).rescue_stddev(5), d),
      "rescue_stddev must be within the decoder's trained range [0.25, 2], got 5");
}

TEST(MlpMaskOperator, IndicesAreThePixelsOfMasksOfCoordinates) {
  MaskDecoder d(MaskDecoderOptions(6, 9));
  MlpMaskOperator op(MlpMaskOptions(6, 9, 5), d);
  const at::Tensor idx = op->Indices();
  const at::Tensor drawn = MasksOfCoordinates(op->points.detach().unsqueeze(0), 6, 9)[0];
  at::Tensor mine = at::zeros({6, 9});
  for (int64_t i = 0; i < 5; ++i) {
    mine[idx[i][0].item<int64_t>()][idx[i][1].item<int64_t>()] = 1;
  }
  EXPECT_TRUE(mine.equal(drawn.to(at::kFloat)));
}

}  // namespace
}  // namespace diff_masks
}  // namespace indexgrad
