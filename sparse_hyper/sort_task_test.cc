// Tests of the MNIST sorting task: sequences and targets against the
// numbers (synthetic digits whose pixels encode their label), key network
// shapes for both architectures, bad input.
#include "sparse_hyper/sort_task.h"

#include <gtest/gtest.h>

#include "kernels/testing/expect_error.h"

namespace indexgrad {
namespace sparse_hyper {
namespace {

// 60 images, label i % 10, every pixel (label + 1) / 16 (+ i / 1e4 to tell
// images of the same label apart).
DigitPool SyntheticPool() {
  at::Tensor labels = at::arange(60, at::kLong) % 10;
  at::Tensor images = ((labels.to(at::kFloat) + 1) / 16 + at::arange(60, at::kFloat) / 1e4)
                          .view({60, 1, 1})
                          .expand({60, 28, 28})
                          .contiguous();
  return DigitPool::FromImages(images, labels);
}

int64_t DigitShown(const at::Tensor& image, int64_t d) {  // image [1, 28, 28 D]
  const float v = image[0][5][d * 28 + 3].item<float>();
  return static_cast<int64_t>(std::floor(v * 16 - 1 + 1e-3));
}

TEST(SortTask, SequencesShowTheirNumbersAndTargetsAreSorted) {
  const DigitPool pool = SyntheticPool();
  std::mt19937_64 rng(1);
  const SortBatch b = SampleSortBatch(pool, 5, 7, 3, rng);
  ASSERT_EQ(b.images.sizes(), (std::vector<int64_t>{5, 7, 1, 28, 84}));
  for (int64_t s = 0; s < 5; ++s) {
    int64_t previous = -1;
    for (int64_t i = 0; i < 7; ++i) {
      const int64_t number = b.numbers[s][i].item<int64_t>();
      ASSERT_GE(number, 0);
      ASSERT_LT(number, 1000);
      EXPECT_EQ(DigitShown(b.images[s][i], 0) * 100 + DigitShown(b.images[s][i], 1) * 10 +
                    DigitShown(b.images[s][i], 2),
                number);
      const int64_t shown = DigitShown(b.target[s][i], 0) * 100 +
                            DigitShown(b.target[s][i], 1) * 10 + DigitShown(b.target[s][i], 2);
      EXPECT_GE(shown, previous);
      previous = shown;
    }
  }
  // Deterministic given the generator's seed.
  std::mt19937_64 again(1);
  EXPECT_TRUE(at::equal(SampleSortBatch(pool, 5, 7, 3, again).images, b.images));
}

TEST(SortTask, KeyNetworksGiveOneKeyPerNumber) {
  const DigitPool pool = SyntheticPool();
  std::mt19937_64 rng(2);
  const SortBatch b = SampleSortBatch(pool, 2, 3, 2, rng);
  for (bool paper : {false, true}) {
    KeyNetwork net(KeyNetworkOptions(2).paper(paper));
    const at::Tensor keys = net->forward(b.images);
    EXPECT_EQ(keys.sizes(), (std::vector<int64_t>{2, 3}));
    keys.sum().backward();
    EXPECT_TRUE(net->mlp->parameters()[0].grad().defined());
  }
  KeyNetwork net(KeyNetworkOptions(3));
  EXPECT_ERROR_CONTAINS(net->forward(b.images), "images must be [batch, n, 1, 28, 84] for 3 digits");
}

TEST(SortTask, BadPoolsAreClearErrors) {
  EXPECT_ERROR_CONTAINS(DigitPool::FromImages(at::zeros({3, 28, 28}), at::tensor({1, 2, 3}, at::kLong)),
                        "no image of digit 0");
  EXPECT_ERROR_CONTAINS(DigitPool::FromImages(at::zeros({1, 28, 28}), at::tensor({12}, at::kLong)),
                        "label 0 is 12, not a digit 0-9");
  EXPECT_ERROR_CONTAINS(DigitPool::FromImages(at::zeros({2, 28, 27}), at::zeros({2}, at::kLong)),
                        "images must be [N, 28, 28], got [2, 28, 27]");
}

}  // namespace
}  // namespace sparse_hyper
}  // namespace indexgrad
