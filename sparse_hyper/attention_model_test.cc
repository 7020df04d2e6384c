// The attention experiment's models against what they are built from: the
// loss is the cross-entropy of the returned logits (plus the box penalty),
// the oracle reads exactly the digit's crop, the ConvNet has no glimpses.
#include "sparse_hyper/attention_model.h"

#include <gtest/gtest.h>

#include "sparse_hyper/digit_window.h"

namespace indexgrad {
namespace sparse_hyper {
namespace {

constexpr int64_t kSide = 40;

SparseAttentionOptions Small(int64_t glimpses, int64_t size) {
  return SparseAttentionOptions()
      .side(kSide)
      .glimpses(glimpses)
      .glimpse_size(size)
      .source_width(0.25)
      .source_hidden(16)
      .classifier_hidden(8)
      .eval_samples(0);
}

struct Batch {
  at::Tensor images, positions, labels;
};

Batch RandomBatch(int64_t n) {
  at::manual_seed(11);
  return {at::rand({n, 1, kSide, kSide}), at::randint(0, kSide - 28 + 1, {n, 2}, at::kLong),
          at::randint(0, 10, {n}, at::kLong)};
}

TEST(SparseAttentionModel, LossIsCrossEntropyPlusTheBoxPenalty) {
  const Batch b = RandomBatch(4);
  at::manual_seed(1);
  SparseAttentionModel plain(Small(2, 8), /*box_penalty=*/0);
  at::manual_seed(1);
  SparseAttentionModel penalised(Small(2, 8), /*box_penalty=*/0.5);
  plain.eval();
  penalised.eval();  // glimpses at rounded positions: no sampling noise
  const auto [loss0, logits0] = plain.Loss(b.images, b.positions, b.labels);
  const auto [loss1, logits1] = penalised.Loss(b.images, b.positions, b.labels);
  EXPECT_TRUE(at::allclose(logits0, logits1));
  EXPECT_NEAR(loss0.item<double>(), at::cross_entropy_loss(logits0, b.labels).item<double>(),
              1e-6);
  const at::Tensor raw = plain.net->forward(b.images).raw_boxes;
  EXPECT_NEAR(loss1.item<double>() - loss0.item<double>(),
              0.5 * BoxSaturationPenalty(raw).item<double>(), 1e-5);
  EXPECT_TRUE(at::allclose(plain.Logits(b.images, b.positions), logits0));
  const auto [boxes, contents] = plain.Glimpses(b.images, b.positions);
  EXPECT_EQ(boxes.sizes(), (at::IntArrayRef{4, 2, 4}));
  EXPECT_EQ(contents.sizes(), (at::IntArrayRef{4, 2, 64}));
  EXPECT_TRUE(at::allclose(boxes, GlimpseBoxes(raw, kSide, kSide)));
}

TEST(ConvNetModel, CrossEntropyOfItsLogitsAndNoGlimpses) {
  const Batch b = RandomBatch(3);
  ConvNetModel model(SourceNetworkOptions().side(kSide).width(0.25).hidden(16).outputs(10));
  model.eval();
  const auto [loss, logits] = model.Loss(b.images, b.positions, b.labels);
  EXPECT_EQ(logits.sizes(), (at::IntArrayRef{3, 10}));
  EXPECT_NEAR(loss.item<double>(), at::cross_entropy_loss(logits, b.labels).item<double>(), 1e-6);
  EXPECT_TRUE(at::allclose(model.Logits(b.images, b.positions), logits));
  EXPECT_FALSE(model.Glimpses(b.images, b.positions).first.defined());
}

TEST(OracleModel, ClassifiesTheCropAtTheRecordedPosition) {
  const Batch b = RandomBatch(5);
  OracleModel oracle(Small(1, 32), /*sampled=*/false);
  oracle.eval();
  const at::Tensor crops = DigitCrops(b.images, b.positions, 32);
  EXPECT_TRUE(at::allclose(oracle.Logits(b.images, b.positions),
                           oracle.classifier->forward(crops.flatten(1))));
  const auto [boxes, contents] = oracle.Glimpses(b.images, b.positions);
  EXPECT_TRUE(at::equal(boxes, DigitWindowBoxes(b.positions, 32).unsqueeze(1)));
  EXPECT_TRUE(at::equal(contents, crops.reshape({5, 1, -1})));
  // Another position, another window: the logits follow the positions.
  EXPECT_FALSE(at::allclose(oracle.Logits(b.images, b.positions),
                            oracle.Logits(b.images, b.positions.flip(0))));
}

TEST(OracleModel, SampledReadsTheWindowAsAGlimpse) {
  const Batch b = RandomBatch(2);
  OracleModel oracle(Small(1, 16), /*sampled=*/true);
  oracle.eval();
  const at::Tensor window = oracle.Window(b.images, b.positions);
  EXPECT_EQ(window.sizes(), (at::IntArrayRef{2, 1, 16, 16}));
  const auto [boxes, contents] = oracle.Glimpses(b.images, b.positions);
  // The boxes are the crop's window (inside the 40 x 40 image here).
  EXPECT_TRUE(at::allclose(boxes.to(at::kDouble), DigitWindowBoxes(b.positions, 16).unsqueeze(1),
                           0, 1e-3));
  EXPECT_TRUE(at::allclose(contents, window.reshape({2, 1, -1})));
}

}  // namespace
}  // namespace sparse_hyper
}  // namespace indexgrad
