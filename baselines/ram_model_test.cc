// RAM behind the attention models' interface: the std schedule, the loss's
// logits, deterministic sampled evaluation, and the finest patches as boxes.
#include "baselines/ram_model.h"

#include <gtest/gtest.h>

#include <cmath>

namespace indexgrad {
namespace baselines {
namespace {

RamOptions Small() {
  return RamOptions().side(32).glimpses(3).patch(6).scales(2).glimpse_hidden(8).glimpse_out(16)
      .hidden(16).location_std(0.4);
}

TEST(RamModel, LocationStdFallsGeometricallyOverTheRun) {
  RamModel annealed(Small(), RamLossOptions(), /*std_end=*/0.1, /*eval_samples=*/1);
  annealed.SetProgress(0, 100);
  EXPECT_DOUBLE_EQ(annealed.net->options.location_std(), 0.4);
  annealed.SetProgress(50, 100);
  EXPECT_NEAR(annealed.net->options.location_std(), 0.2, 1e-12);  // sqrt(0.4 * 0.1)
  annealed.SetProgress(100, 100);
  EXPECT_NEAR(annealed.net->options.location_std(), 0.1, 1e-12);
  RamModel constant(Small(), RamLossOptions(), /*std_end=*/0, /*eval_samples=*/1);
  constant.SetProgress(70, 100);
  EXPECT_DOUBLE_EQ(constant.net->options.location_std(), 0.4);
}

TEST(RamModel, LossLogitsEvaluationAndPatches) {
  at::manual_seed(2);
  const at::Tensor images = at::rand({4, 1, 32, 32});
  const at::Tensor labels = at::randint(0, 10, {4}, at::kLong);
  RamModel model(Small(), RamLossOptions().samples(3), 0, /*eval_samples=*/5);
  const auto [loss, logits] = model.Loss(images, at::Tensor(), labels);
  EXPECT_EQ(loss.dim(), 0);
  EXPECT_TRUE(std::isfinite(loss.item<double>()));
  EXPECT_EQ(logits.sizes(), (at::IntArrayRef{4, 10}));
  model.eval();
  // The sampled evaluation draws from a generator seeded the same each call.
  EXPECT_TRUE(at::equal(model.Logits(images, at::Tensor()), model.Logits(images, at::Tensor())));
  const auto [boxes, patches] = model.Glimpses(images, at::Tensor());
  EXPECT_EQ(boxes.sizes(), (at::IntArrayRef{4, 3, 4}));
  EXPECT_EQ(patches.sizes(), (at::IntArrayRef{4, 3, 36}));
  // Each box spans the finest patch: patch - 1 pixels from corner to corner.
  EXPECT_TRUE(at::allclose(boxes.slice(2, 2, 4) - boxes.slice(2, 0, 2),
                           at::full({4, 3, 2}, 5.0, boxes.options())));
}

}  // namespace
}  // namespace baselines
}  // namespace indexgrad
