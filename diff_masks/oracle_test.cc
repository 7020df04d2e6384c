#include "diff_masks/oracle.h"

#include <stb/stb_image_write.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "diff_masks/mask_image.h"
#include "kernels/testing/expect_error.h"
#include "kernels/testing/scratch.h"

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

TEST(MaskOracle, IndexIoUCountsDistinctPixelsInsideTheImage) {
  auto left = *MaskOracle::Create(TargetKind::kLeftHalf, 4, 4, 0);  // 8 pixels
  // (0, 0) twice, (1, 1) on target, (2, 3) off target, two outside.
  const at::Tensor pixels =
      at::tensor(std::vector<int64_t>{0, 0, 0, 0, 1, 1, 2, 3, -1, 0, 0, 4}).view({6, 2});
  EXPECT_DOUBLE_EQ(left.IndexIoU(pixels), 2.0 / 9);  // {00, 11} of 8 + {23}
  at::Tensor all = at::zeros({8, 2}, at::kLong);
  for (int64_t i = 0; i < 8; ++i) {
    all[i][0] = i / 2;
    all[i][1] = i % 2;
  }
  EXPECT_DOUBLE_EQ(left.IndexIoU(all), 1.0);
  EXPECT_ERROR_CONTAINS(left.IndexIoU(at::zeros({3, 2})), "pixels must be [K, 2] int64");
}

TEST(MaskOracle, FromUserMask) {
  at::Tensor user = at::zeros({5, 6});
  user[1][2] = 1;
  user[3][4] = 1;
  user[4][0] = 1;
  auto oracle = MaskOracle::FromMask(user.to(at::kLong));
  ASSERT_TRUE(oracle.ok()) << oracle.status();
  EXPECT_EQ(oracle->target_pixels(), 3);
  EXPECT_EQ(oracle->height(), 5);
  EXPECT_EQ(oracle->width(), 6);
  EXPECT_EQ(oracle->Mse(user).item<double>(), 0.0);
  EXPECT_NEAR(oracle->Mse(at::zeros({5, 6})).item<double>(), 3.0 / 30, 1e-7);
  EXPECT_EQ(oracle->Score(user).iou, 1.0);
  EXPECT_TRUE(TargetForFigures(*oracle).equal(user));
}

TEST(MaskOracle, FromUserMaskRejectsBadMasks) {
  at::Tensor half = at::zeros({4, 4});
  half[2][1] = 0.5;
  EXPECT_EQ(MaskOracle::FromMask(half, "my.png").status().message(),
            "my.png: mask must be binary (every value 0 or 1), got 0.5 at (2, 1)");
  at::Tensor nan = at::ones({4, 4});
  nan[0][3] = NAN;
  EXPECT_FALSE(MaskOracle::FromMask(nan).ok());
  EXPECT_NE(MaskOracle::FromMask(at::zeros({4, 4}), "z.pgm").status().message().find(
                "z.pgm: the mask is empty"),
            std::string::npos);
  EXPECT_NE(MaskOracle::FromMask(at::ones({4})).status().message().find(
                "a mask must be a 2-D tensor [H, W], got [4]"),
            std::string::npos);
  EXPECT_NE(MaskOracle::FromMask(at::ones({1, 4})).status().message().find(
                "at least 2 x 2, got 1 x 4"),
            std::string::npos);
}

TEST(LoadMaskImage, PngAndPgmThresholdedAtHalfRange) {
  // 3 x 4 grey values; >= 128 is on.
  const std::vector<uint8_t> grey = {0, 127, 128, 255,  //
                                     200, 10, 129, 3,   //
                                     255, 255, 0, 126};
  const at::Tensor expected = at::tensor(std::vector<float>{0, 0, 1, 1,  //
                                                            1, 0, 1, 0,  //
                                                            1, 1, 0, 0})
                                  .view({3, 4});
  const std::string png = testing::ScratchPath("mask.png");
  ASSERT_NE(stbi_write_png(png.c_str(), 4, 3, 1, grey.data(), 4), 0);
  auto from_png = LoadMaskImage(png);
  ASSERT_TRUE(from_png.ok()) << from_png.status();
  EXPECT_TRUE(from_png->equal(expected));
  // A binary PGM (P5) written by hand, and a 16-bit one (>= 32768 is on).
  const std::string pgm = testing::ScratchPath("mask.pgm");
  {
    std::ofstream out(pgm, std::ios::binary);
    out << "P5\n4 3\n255\n";
    out.write(reinterpret_cast<const char*>(grey.data()), grey.size());
  }
  auto from_pgm = LoadMaskImage(pgm);
  ASSERT_TRUE(from_pgm.ok()) << from_pgm.status();
  EXPECT_TRUE(from_pgm->equal(expected));
  const std::string pgm16 = testing::ScratchPath("mask16.pgm");
  {
    std::ofstream out(pgm16, std::ios::binary);
    out << "P5\n2 2\n65535\n";
    for (uint16_t v : {uint16_t(32767), uint16_t(32768), uint16_t(65535), uint16_t(0)}) {
      const char be[2] = {static_cast<char>(v >> 8), static_cast<char>(v & 255)};
      out.write(be, 2);
    }
  }
  auto from_pgm16 = LoadMaskImage(pgm16);
  ASSERT_TRUE(from_pgm16.ok()) << from_pgm16.status();
  EXPECT_TRUE(from_pgm16->equal(at::tensor(std::vector<float>{0, 1, 1, 0}).view({2, 2})));
  // And it makes an oracle.
  EXPECT_EQ(MaskOracle::FromMask(*from_png, png)->target_pixels(), 6);
}

TEST(LoadMaskImage, MissingAndCorruptFilesNameTheFile) {
  const std::string missing = testing::ScratchPath("no_such_mask.png");
  EXPECT_EQ(LoadMaskImage(missing).status().message(),
            "mask file " + missing + ": cannot be opened");
  const std::string corrupt = testing::ScratchPath("corrupt.png");
  std::ofstream(corrupt) << "this is not an image";
  const std::string message(LoadMaskImage(corrupt).status().message());
  EXPECT_NE(message.find("mask file " + corrupt + ": not a readable image"),
            std::string::npos)
      << message;
  // A PGM cut short: stb_image alone returned garbage pixels for it.
  const std::string cut = testing::ScratchPath("cut.pgm");
  {
    std::ofstream out(cut, std::ios::binary);
    out << "P5\n# a comment\n4 3\n255\n" << std::string(5, '\xff');
  }
  EXPECT_EQ(LoadMaskImage(cut).status().message(),
            "mask file " + cut +
                ": cut short (5 bytes of pixel data, a 3 x 4 image needs 12)");
}

}  // namespace
}  // namespace diff_masks
}  // namespace indexgrad
