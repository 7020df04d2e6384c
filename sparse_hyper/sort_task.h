// The MNIST sorting task of Bloem et al. 2018 (section 3.3, appendix A.1)
// and of NeuralSort (Grover et al. 2019, section 6.1): sequences of n random
// `digits`-digit numbers, each shown as that many MNIST digits side by
// side; a key network maps each number's image to one scalar key; a
// differentiable sort (sorting.h) orders the images by their keys; the loss
// compares them with the images in the numbers' true order.
//
//   DigitPool train = DigitPool::FromImages(images, labels);  // [N, 28, 28], [N]
//   SortBatch batch = SampleSortBatch(train, /*batch=*/64, /*n=*/8, /*digits=*/3, rng);
//   KeyNetwork keys(KeyNetworkOptions(/*digits=*/3));
//   SortOutput out = sorter->forward(keys->forward(batch.images), batch.images);
//   at::Tensor loss = SortLoss(out, batch.target, {SortLossOptions::Kind::kBce, /*intermediate=*/true});
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <random>
#include <vector>

namespace indexgrad {
namespace sparse_hyper {

// Digit images grouped by label, to draw a digit of a given label.
struct DigitPool {
  at::Tensor images;                            // [N, 28, 28] float in [0, 1]
  std::vector<std::vector<int64_t>> by_label;   // 10 lists of indices

  // Checks shapes and labels in [0, 10); every label must occur.
  static DigitPool FromImages(const at::Tensor& images, const at::Tensor& labels);
};

struct SortBatch {
  at::Tensor images;   // [batch, n, 1, 28, 28 * digits]
  at::Tensor numbers;  // [batch, n] int64, uniform in [0, 10^digits)
  at::Tensor target;   // images in the numbers' (stable) ascending order
};

// Numbers uniform in [0, 10^digits), each digit an image of that label drawn
// uniformly from the pool; deterministic given `rng`.
SortBatch SampleSortBatch(const DigitPool& pool, int64_t batch, int64_t n,
                          int64_t digits, std::mt19937_64& rng);

struct KeyNetworkOptions {
  explicit KeyNetworkOptions(int64_t digits) : digits_(digits) {}
  TORCH_ARG(int64_t, digits);
  // true: the paper's ConvNet (appendix Table 3: 3 x 3 convolutions
  // 16, 16, 16 | 64, 64, 64 | 128, 128, 128, batch norm and max pool after
  // each block, then 256, 128, 8); false: a small ConvNet for CPU runs
  // (5 x 5 convolutions 16 and 32, each with batch norm and max pool, then
  // 64, 8).
  TORCH_ARG(bool, paper) = false;
};

// Per-digit ConvNet -> 8 features, concatenated over digits, MLP 8 d -> 256
// -> 1: one key per number.
class KeyNetworkImpl : public torch::nn::Module {
 public:
  explicit KeyNetworkImpl(KeyNetworkOptions options);
  // images [batch, n, 1, 28, 28 d] -> keys [batch, n]
  at::Tensor forward(const at::Tensor& images);

  KeyNetworkOptions options;
  torch::nn::Sequential digit_net{nullptr};
  torch::nn::Sequential mlp{nullptr};
};
TORCH_MODULE(KeyNetwork);

}  // namespace sparse_hyper
}  // namespace indexgrad
