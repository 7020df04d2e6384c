// The decoder training behind //experiments:train_mask_decoder and
// //experiments:mask_recovery: settings errors name the flag and the value,
// a tiny training writes the decoder and its CSV, ends its schedule near 2 % of
// the peak learning rate, gives the same weights whatever the process drew
// before, and LoadOrTrainMaskDecoder loads what it saved (or trains first).
#include "experiments/mask_decoder_training.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "experiments/common/csv.h"
#include "kernels/testing/scratch.h"

namespace indexgrad {
namespace experiments {
namespace {

MaskDecoderTraining Tiny(const std::string& path) {
  MaskDecoderTraining t;
  t.path = path;
  t.steps = 24;
  t.batch = 8;
  t.lr = 1e-2;
  t.hidden = 16;
  t.blocks = 1;
  return t;
}

std::string Message(const absl::StatusOr<diff_masks::MaskDecoder>& d) {
  return std::string(d.status().message());
}

// Largest absolute difference over the parameters of two decoders.
double MaxParameterDifference(diff_masks::MaskDecoderImpl& a, diff_masks::MaskDecoderImpl& b) {
  const auto pa = a.parameters();
  const auto pb = b.parameters();
  EXPECT_EQ(pa.size(), pb.size());
  double worst = 0;
  for (size_t i = 0; i < pa.size() && i < pb.size(); ++i) {
    EXPECT_EQ(pa[i].sizes(), pb[i].sizes());
    worst = std::max(worst, (pa[i] - pb[i]).abs().max().item<double>());
  }
  return worst;
}

TEST(TrainMaskDecoder, SettingsErrorsNameTheFlagAndTheValue) {
  const std::string path = testing::ScratchPath("never/decoder.pt");
  MaskDecoderTraining t = Tiny(path);
  t.steps = 0;
  EXPECT_EQ(Message(TrainMaskDecoder(8, 8, t)), "--decoder_steps must be >= 1, got 0");
  t = Tiny(path);
  t.batch = 1;
  EXPECT_EQ(Message(TrainMaskDecoder(8, 8, t)), "--decoder_batch must be >= 2, got 1");
  t = Tiny(path);
  t.lr = NAN;
  EXPECT_EQ(Message(TrainMaskDecoder(8, 8, t)), "--decoder_lr must be > 0, got nan");
  t = Tiny(path);
  t.path = "";
  EXPECT_EQ(Message(TrainMaskDecoder(8, 8, t)), "--decoder_path must not be empty");
  EXPECT_EQ(Message(TrainMaskDecoder(1, 8, Tiny(path))),
            "decoder size must be at least 2 x 2, got 1 x 8");
  t = Tiny(path);
  t.hidden = 0;
  EXPECT_FALSE(TrainMaskDecoder(8, 8, t).ok());
  EXPECT_FALSE(std::filesystem::exists(path));  // nothing written on a bad setting
}

TEST(TrainMaskDecoder, WritesTheDecoderAndItsCsvAndIsSeeded) {
  const std::string dir = testing::ScratchDir("decoder_training");
  const MaskDecoderTraining first = Tiny(dir + "/first/decoder_8x8.pt");
  auto a = TrainMaskDecoder(8, 8, first, /*resume=*/false);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(std::filesystem::exists(first.path));
  const std::string csv = dir + "/first/decoder_8x8.csv";
  auto last = LastRowValues(csv, {"step", "loss", "lr"});
  ASSERT_TRUE(last.ok()) << last.status();
  ASSERT_EQ(last->size(), 3u);
  EXPECT_EQ((*last)[0], 24);
  EXPECT_TRUE(std::isfinite((*last)[1]));
  // Cosine decay towards 2 % of the peak: the last of 24 steps is at
  // t = 23 / 24 of the schedule, past the warm-up.
  EXPECT_NEAR((*last)[2], first.lr * (0.02 + 0.98 * 0.5 * (1 + std::cos(M_PI * 23 / 24))),
              1e-9);
  EXPECT_LT((*last)[2], 0.025 * first.lr);

  // Another draw first: the decoder still comes out the same.
  at::manual_seed(99);
  (void)at::rand({1000});
  auto b = TrainMaskDecoder(8, 8, Tiny(dir + "/second/decoder_8x8.pt"), /*resume=*/false);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(MaxParameterDifference(**a, **b), 0.0);
  // A different setting gives different weights (the comparison can fail).
  MaskDecoderTraining other = Tiny(dir + "/third/decoder_8x8.pt");
  other.lr = 2e-2;
  auto c = TrainMaskDecoder(8, 8, other, /*resume=*/false);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_GT(MaxParameterDifference(**a, **c), 0.0);
}

TEST(LoadOrTrainMaskDecoder, LoadsWhatWasSavedAndTrainsWhenMissing) {
  const std::string dir = testing::ScratchDir("decoder_load");
  const MaskDecoderTraining t = Tiny(dir + "/decoder_8x8.pt");
  auto trained = LoadOrTrainMaskDecoder(8, 8, t);  // missing: trains first
  ASSERT_TRUE(trained.ok()) << trained.status();
  ASSERT_TRUE(std::filesystem::exists(t.path));
  auto loaded = LoadOrTrainMaskDecoder(8, 8, t);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(MaxParameterDifference(**trained, **loaded), 0.0);
  // The loaded decoder renders what the trained one does.
  const at::Tensor coords = at::rand({2, 3, 2}, at::kFloat) * 7;
  (*trained)->eval();
  (*loaded)->eval();
  EXPECT_TRUE(at::equal((*trained)->Render(coords, 0.5), (*loaded)->Render(coords, 0.5)));

  // A file of another width is refused, not silently reshaped.
  MaskDecoderTraining wider = t;
  wider.hidden = 32;
  EXPECT_FALSE(LoadOrTrainMaskDecoder(8, 8, wider).ok());
}

}  // namespace
}  // namespace experiments
}  // namespace indexgrad
