#include "sparse_hyper/sort_task.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>

#include <algorithm>
#include <numeric>

#include "kernels/common/checks.h"
#include "sparse_hyper/sorting.h"

namespace indexgrad {
namespace sparse_hyper {

namespace nn = torch::nn;

DigitPool DigitPool::FromImages(const at::Tensor& images, const at::Tensor& labels) {
  const char* op = "DigitPool";
  check_dim(op, "images", images, 3);
  TORCH_CHECK(images.size(1) == 28 && images.size(2) == 28, op,
              ": images must be [N, 28, 28], got ", shape_string(images.sizes()));
  check_dim(op, "labels", labels, 1);
  TORCH_CHECK(labels.size(0) == images.size(0), op, ": ", images.size(0), " images but ",
              labels.size(0), " labels");
  DigitPool pool;
  pool.images = images.to(at::kFloat).contiguous();
  pool.by_label.resize(10);
  const at::Tensor l = labels.to(at::kLong).contiguous();
  const int64_t* lp = l.data_ptr<int64_t>();
  for (int64_t i = 0; i < l.numel(); ++i) {
    TORCH_CHECK(lp[i] >= 0 && lp[i] < 10, op, ": label ", i, " is ", lp[i],
                ", not a digit 0-9");
    pool.by_label[lp[i]].push_back(i);
  }
  for (int d = 0; d < 10; ++d) {
    TORCH_CHECK(!pool.by_label[d].empty(), op, ": no image of digit ", d);
  }
  return pool;
}

SortBatch SampleSortBatch(const DigitPool& pool, int64_t batch, int64_t n,
                          int64_t digits, std::mt19937_64& rng) {
  TORCH_CHECK(batch >= 1 && n >= 1, "SampleSortBatch: batch and n must be >= 1, got ",
              batch, " and ", n);
  TORCH_CHECK(digits >= 1 && digits <= 9, "SampleSortBatch: digits must be in [1, 9], got ",
              digits);
  int64_t limit = 1;
  for (int64_t d = 0; d < digits; ++d) limit *= 10;
  std::uniform_int_distribution<int64_t> number(0, limit - 1);
  SortBatch out;
  out.numbers = at::empty({batch, n}, at::kLong);
  at::Tensor index = at::empty({batch, n, digits}, at::kLong);  // image per digit
  int64_t* np = out.numbers.data_ptr<int64_t>();
  int64_t* ip = index.data_ptr<int64_t>();
  for (int64_t j = 0; j < batch * n; ++j) {
    np[j] = number(rng);
    int64_t v = np[j], place = limit / 10;
    for (int64_t d = 0; d < digits; ++d, place /= 10) {
      const auto& choices = pool.by_label[(v / place) % 10];
      std::uniform_int_distribution<size_t> pick(0, choices.size() - 1);
      ip[j * digits + d] = choices[pick(rng)];
    }
  }
  // [batch, n, digits, 28, 28] -> [batch, n, 1, 28, digits * 28]
  out.images = pool.images.index_select(0, index.view({-1}))
                   .view({batch, n, digits, 28, 28})
                   .permute({0, 1, 3, 2, 4})
                   .reshape({batch, n, 1, 28, digits * 28});
  const at::Tensor order = std::get<1>(out.numbers.sort(/*stable=*/true, 1, false));
  out.target = PermuteRows(out.images, order);
  return out;
}

namespace {

// Appends `layers` convolutions (ReLU after each), batch norm, 2 x 2 max pool.
void AddConvBlock(nn::Sequential& block, int64_t in, int64_t out, int64_t kernel,
                  int64_t layers) {
  for (int64_t i = 0; i < layers; ++i) {
    // No bias directly before batch norm (Table 3's note).
    block->push_back(nn::Conv2d(nn::Conv2dOptions(i == 0 ? in : out, out, kernel)
                                    .padding(kernel / 2)
                                    .bias(i + 1 < layers ? true : false)));
    block->push_back(nn::ReLU());
  }
  block->push_back(nn::BatchNorm2d(out));
  block->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
}

}  // namespace

KeyNetworkImpl::KeyNetworkImpl(KeyNetworkOptions options_) : options(options_) {
  TORCH_CHECK(options.digits() >= 1, "KeyNetwork: digits must be >= 1, got ",
              options.digits());
  digit_net = nn::Sequential();
  if (options.paper()) {
    AddConvBlock(digit_net, 1, 16, 3, 3);    // 28 -> 14
    AddConvBlock(digit_net, 16, 64, 3, 3);   // 14 -> 7
    AddConvBlock(digit_net, 64, 128, 3, 3);  // 7 -> 3
    digit_net->push_back(nn::Flatten());
    digit_net->push_back(nn::Linear(128 * 3 * 3, 256));
    digit_net->push_back(nn::ReLU());
    digit_net->push_back(nn::Linear(256, 128));
    digit_net->push_back(nn::ReLU());
    digit_net->push_back(nn::Linear(128, 8));
  } else {
    AddConvBlock(digit_net, 1, 16, 5, 1);   // 28 -> 14
    AddConvBlock(digit_net, 16, 32, 5, 1);  // 14 -> 7
    digit_net->push_back(nn::Flatten());
    digit_net->push_back(nn::Linear(32 * 7 * 7, 64));
    digit_net->push_back(nn::ReLU());
    digit_net->push_back(nn::Linear(64, 8));
  }
  mlp = nn::Sequential(nn::Linear(8 * options.digits(), 256), nn::ReLU(), nn::Linear(256, 1));
  register_module("digit_net", digit_net);
  register_module("mlp", mlp);
}

at::Tensor KeyNetworkImpl::forward(const at::Tensor& images) {
  const int64_t d = options.digits();
  TORCH_CHECK(images.dim() == 5 && images.size(2) == 1 && images.size(3) == 28 &&
                  images.size(4) == 28 * d,
              "KeyNetwork: images must be [batch, n, 1, 28, ", 28 * d, "] for ", d,
              " digits, got ", shape_string(images.sizes()));
  const int64_t batch = images.size(0), n = images.size(1);
  // [batch, n, 1, 28, d, 28] -> [batch * n * d, 1, 28, 28]
  const at::Tensor digits = images.view({batch, n, 28, d, 28})
                                .permute({0, 1, 3, 2, 4})
                                .reshape({batch * n * d, 1, 28, 28});
  const at::Tensor features = digit_net->forward(digits).view({batch * n, 8 * d});
  return mlp->forward(features).view({batch, n});
}

}  // namespace sparse_hyper
}  // namespace indexgrad
