// The digit window's crop, boxes and centre test, against plain loops and
// known cases.
#include "sparse_hyper/digit_window.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "sparse_hyper/glimpse.h"

namespace indexgrad {
namespace sparse_hyper {
namespace {

TEST(DigitCentreInBox, AgainstALoopAndKnownCases) {
  // Digit at (10, 20): centre (23.5, 33.5).
  const at::Tensor pos = at::tensor({10, 20, 10, 20, 10, 20, 10, 20, 0, 0}, at::kLong).view({5, 2});
  const at::Tensor boxes = at::tensor({
      23.5, 33.5, 30.0, 40.0,  0.0, 0.0, 1.0, 1.0,   // 0: first box, centre on its corner
      0.0,  0.0,  5.0,  5.0,   40.0, 40.0, 20.0, 30.0, // 1: second box, corners reversed
      0.0,  0.0,  23.4, 99.0,  0.0, 0.0, 99.0, 33.4, // 2: each misses by 0.1 in one axis
      24.0, 0.0,  99.0, 99.0,  0.0, 34.0, 99.0, 99.0, // 3: past the centre in one axis each
      13.0, 13.0, 14.0, 14.0,  0.0, 0.0, 0.0, 0.0},   // 4: digit at (0, 0), box around 13.5
      at::kDouble).view({5, 2, 4});
  const at::Tensor hit = DigitCentreInBox(boxes, pos);
  EXPECT_TRUE(at::equal(hit.to(at::kLong), at::tensor({1, 1, 0, 0, 1}, at::kLong)));
  // Random boxes against a plain loop.
  at::manual_seed(3);
  const at::Tensor rb = at::rand({200, 3, 4}, at::kDouble) * 100;
  const at::Tensor rp = at::randint(0, 72, {200, 2}, at::kLong);
  const at::Tensor got = DigitCentreInBox(rb, rp);
  for (int64_t i = 0; i < 200; ++i) {
    bool any = false;
    for (int64_t g = 0; g < 3; ++g) {
      bool in = true;
      for (int64_t d = 0; d < 2; ++d) {
        const double a = rb[i][g][d].item<double>(), b = rb[i][g][d + 2].item<double>();
        const double c = rp[i][d].item<int64_t>() + 13.5;
        in = in && c >= std::min(a, b) && c <= std::max(a, b);
      }
      any = any || in;
    }
    EXPECT_EQ(got[i].item<bool>(), any) << i;
  }
  EXPECT_THROW(DigitCentreInBox(rb.select(2, 0), rp), c10::Error);
  EXPECT_THROW(DigitCentreInBox(rb, rp.slice(0, 0, 10)), c10::Error);
}

TEST(DigitCrops, AgainstALoopWithZerosOutsideTheImage) {
  at::manual_seed(5);
  const int64_t side = 40, size = 32;
  const at::Tensor images = at::rand({6, 2, side, side}, at::kDouble);
  // Corners and the middle: crops reach past every edge.
  const at::Tensor pos = at::tensor({0, 0, 12, 12, 0, 12, 12, 0, 5, 7, 3, 11}, at::kLong).view({6, 2});
  const at::Tensor got = DigitCrops(images, pos, size);
  ASSERT_EQ(got.sizes(), (at::IntArrayRef{6, 2, size, size}));
  for (int64_t i = 0; i < 6; ++i) {
    for (int64_t c = 0; c < 2; ++c) {
      for (int64_t y = 0; y < size; ++y) {
        for (int64_t x = 0; x < size; ++x) {
          // Crop pixel (y, x) is image pixel (row + 14 - 16 + y, column + 14 - 16 + x).
          const int64_t iy = pos[i][0].item<int64_t>() - 2 + y, ix = pos[i][1].item<int64_t>() - 2 + x;
          const double want = iy >= 0 && iy < side && ix >= 0 && ix < side
                                  ? images[i][c][iy][ix].item<double>()
                                  : 0.0;
          ASSERT_EQ(got[i][c][y][x].item<double>(), want) << i << " " << c << " " << y << " " << x;
        }
      }
    }
  }
  // Size 28: the digit's own square.
  const at::Tensor digit = DigitCrops(images, pos, 28);
  EXPECT_TRUE(at::equal(digit[4], images[4].narrow(1, 5, 28).narrow(2, 7, 28)));
  EXPECT_THROW(DigitCrops(images, pos.slice(0, 0, 5), size), c10::Error);
  EXPECT_THROW(DigitCrops(images, pos.to(at::kFloat), size), c10::Error);
  EXPECT_THROW(DigitCrops(images, pos + 1, size), c10::Error);  // (13, 13): digit past the edge
  EXPECT_THROW(DigitCrops(images.select(1, 0), pos, size), c10::Error);
}

TEST(DigitWindowRawBoxes, TheWindowOfDigitCropsReadByAGlimpse) {
  const int64_t side = 50, size = 32;
  // Digits at (9, 11) and (22, 3): windows (7, 9)-(38, 40) inside the image
  // and (20, 1)-(51, 32), past the bottom edge (49): squeezed to 48.5.
  const at::Tensor pos = at::tensor({9, 11, 22, 3}, at::kLong).view({2, 2});
  const at::Tensor raw = DigitWindowRawBoxes(pos, size, side);
  ASSERT_EQ(raw.sizes(), (at::IntArrayRef{2, 1, 4}));
  const at::Tensor want =
      at::tensor({7.0, 9.0, 38.0, 40.0, 20.0, 1.0, 48.5, 32.0}, at::kDouble).view({2, 1, 4});
  EXPECT_TRUE(at::allclose(GlimpseBoxes(raw, side, side), want, 0, 1e-9));
  // Read at rounded positions, the glimpse of the first window is the crop.
  at::manual_seed(4);
  const at::Tensor images = at::rand({2, 1, side, side}, at::kDouble);
  GlimpseLayer g(GlimpseOptions().size(size).eval_samples(0));
  g->to(at::kDouble);
  g->eval();
  const at::Tensor glimpse = g->forward(images, raw).squeeze(1);  // [2, 1, 32, 32]
  EXPECT_TRUE(at::allclose(glimpse[0], DigitCrops(images, pos, size)[0], 0, 1e-12));
  EXPECT_FALSE(at::allclose(glimpse[1], DigitCrops(images, pos, size)[1], 0, 1e-3));
  EXPECT_THROW(DigitWindowRawBoxes(pos.view({4}), size, side), c10::Error);
}

}  // namespace
}  // namespace sparse_hyper
}  // namespace indexgrad
