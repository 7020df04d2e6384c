#include "diff_masks/mask_decoder.h"

#include <gtest/gtest.h>
#include <torch/optim/adam.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "diff_masks/mask_operator.h"
#include "diff_masks/oracle.h"
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

TEST(MaskDecoder, EncodingHasPixelPeriods) {
  MaskDecoder d(MaskDecoderOptions(32, 32));
  EXPECT_EQ(d->frequencies(), 6);  // 2^6 = 64 >= 2 * 32
  // Pixel (3, 0): the period-2 cosine is cos(pi * 3) = -1, cos(0) = 1.
  const at::Tensor coords = at::tensor({3.0 / 31, 0.0}, at::kDouble).view({1, 2});
  const at::Tensor e = d->Encode(coords);
  ASSERT_EQ(e.sizes(), at::IntArrayRef({1, 2 + 4 * 6}));
  // Layout: coords (2), sin of row f, sin of col f, cos of row f, cos of col f.
  EXPECT_NEAR(e[0][2 + 12].item<double>(), -1.0, 1e-12);
  EXPECT_NEAR(e[0][2 + 12 + 6].item<double>(), 1.0, 1e-12);
  EXPECT_NEAR(e[0][2].item<double>(), 0.0, 1e-12);  // sin(pi * 3)
}

TEST(MaskDecoder, RenderIsTheUnionOfPointMasks) {
  at::manual_seed(0);
  MaskDecoder d(MaskDecoderOptions(4, 6).hidden(16).blocks(1));
  d->to(at::kDouble);
  d->eval();
  const at::Tensor coords = at::rand({2, 3, 2}, at::kDouble);
  for (double temperature : {1.0, 3.0}) {
    const at::Tensor m = d->Render(coords, temperature);
    ASSERT_EQ(m.sizes(), at::IntArrayRef({2, 4, 6}));
    for (int64_t b = 0; b < 2; ++b) {
      const at::Tensor p = at::sigmoid(d->PointLogits(coords[b]) / temperature);  // [3, 24]
      for (int64_t px = 0; px < 24; ++px) {
        double off = 1;
        for (int64_t k = 0; k < 3; ++k) off *= 1 - p[k][px].item<double>();
        EXPECT_NEAR(m[b][px / 6][px % 6].item<double>(), 1 - off, 1e-12)
            << "temperature " << temperature;
      }
    }
  }
}

TEST(MaskDecoder, BadInputIsAnError) {
  EXPECT_ERROR_CONTAINS(MaskDecoder(MaskDecoderOptions(0, 4)), "height and width");
  EXPECT_ERROR_CONTAINS(MaskDecoder(MaskDecoderOptions(4, 4).frequencies(40)),
                        "frequencies");
  MaskDecoder d(MaskDecoderOptions(4, 4).hidden(8));
  EXPECT_ERROR_CONTAINS(d->Render(at::rand({3, 2})), "coords must be [B, K, 2]");
  EXPECT_ERROR_CONTAINS(d->Render(at::zeros({1, 3, 2}, at::kLong)), "floating point");
  EXPECT_ERROR_CONTAINS(d->Render(at::rand({1, 3, 2}), 0.0), "temperature");
  EXPECT_ERROR_CONTAINS(MlpMaskOperator(MlpMaskOptions(8, 8, 3), d), "4 x 4");
  EXPECT_ERROR_CONTAINS(MlpMaskOperator(MlpMaskOptions(4, 4, 0), d), "k must be >= 1");
  EXPECT_ERROR_CONTAINS(
      MlpMaskOperator(MlpMaskOptions(4, 4, 2).temperature_start(-1), d), "temperature");
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
  EXPECT_TRUE((*loaded)->Render(coords).equal(d->Render(coords)));

  auto wrong = LoadMaskDecoder(path, MaskDecoderOptions(6, 6).hidden(16).blocks(1));
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("hidden 8"), std::string::npos)
      << wrong.status();
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
  EXPECT_LE(m.max().item<float>(), 1.0f);
  (m * at::randn({6, 6})).sum().backward();
  EXPECT_GT(op->points.grad().abs().sum().item<float>(), 0.0f);
  for (const at::Tensor& p : op->decoder->parameters()) {
    EXPECT_FALSE(p.requires_grad());
    EXPECT_FALSE(p.grad().defined());
  }
}

TEST(MlpMaskOperator, TemperatureAnneals) {
  MaskDecoder d(MaskDecoderOptions(4, 4).hidden(8));
  MlpMaskOperator op(
      MlpMaskOptions(4, 4, 2).temperature_start(4.0).temperature_end(1.0).anneal_fraction(0.5),
      d);
  EXPECT_DOUBLE_EQ(op->temperature(), 4.0);
  op->SetProgress(25, 100);
  EXPECT_NEAR(op->temperature(), 2.0, 1e-12);
  op->SetProgress(90, 100);
  EXPECT_DOUBLE_EQ(op->temperature(), 1.0);
}

// The test: after a short training at a small size, the decoder's
// masks match their coordinates. Then the frozen decoder recovers a target
// through the oracle.
TEST(MaskDecoder, ShortTrainingReproducesMasksOfCoordinates) {
  at::manual_seed(0);
  const int64_t size = 8;
  MaskDecoder d(MaskDecoderOptions(size, size).hidden(128).blocks(2));
  const double before = EvaluateMaskDecoder(*d, 4, 64, 7).iou;
  torch::optim::Adam adam(d->parameters(), torch::optim::AdamOptions(3e-3));
  const auto start = std::chrono::steady_clock::now();
  const int64_t steps = 1500;
  for (int64_t s = 0; s < steps; ++s) TrainMaskDecoderStep(*d, adam, 128);
  const MaskDecoderScores after = EvaluateMaskDecoder(*d, 4, 64, 7);
  std::printf("decoder %lldx%lld: IoU %.3f -> %.3f, pixel accuracy %.3f, %lld steps in %.1f s\n",
              (long long)size, (long long)size, before, after.iou, after.pixel_accuracy,
              (long long)steps,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  EXPECT_LT(before, 0.2);
  EXPECT_GT(after.iou, 0.9);
  EXPECT_GT(after.pixel_accuracy, 0.95);
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
