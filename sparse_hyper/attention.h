// The attention model of Bloem et al. 2018 (section 3.2, appendix A.1 and
// Table 2): a ConvNet source network reads the whole image and gives 4
// values per glimpse (the glimpse's box, see glimpse.h); the glimpses are
// flattened, concatenated and classified by a 2-layer MLP (128 ReLU units,
// 10 logits). The paper's classifier applied softmax twice (once in the
// model, once in the loss); this one returns logits for a cross-entropy.
//
//   SparseAttention model(SparseAttentionOptions().glimpses(8).glimpse_size(12));
//   SparseAttentionImpl::Output out = model->forward(images);  // [B, 1, 100, 100]
//   at::Tensor loss = at::cross_entropy_loss(out.logits, labels);
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "sparse_hyper/glimpse.h"

namespace indexgrad {
namespace sparse_hyper {

// Table 2 for a [B, channels, side, side] image: conv 32, 32, maxpool 4,
// conv 64, 64, maxpool 2, conv 128, 128 (3 x 3, padding 1, ReLU), flatten,
// linear 512, 512 (ReLU), linear `outputs`. `width` scales the channel
// counts (32 -> 32 * width) and `hidden` the two linear layers; the paper
// is width 1, hidden 512.
struct SourceNetworkOptions {
  TORCH_ARG(int64_t, side) = 100;
  TORCH_ARG(int64_t, channels) = 1;
  TORCH_ARG(double, width) = 1.0;
  TORCH_ARG(int64_t, hidden) = 512;
  TORCH_ARG(int64_t, outputs) = 4;
  // Convolution weights stored channels-last (NHWC): oneDNN then runs the
  // whole convolution stack in that layout. Same function, different
  // summation order (outputs equal to float rounding), faster on CPUs
  // where oneDNN prefers it (docs/attention.md).
  TORCH_ARG(bool, channels_last) = true;
};
torch::nn::Sequential SourceNetwork(const SourceNetworkOptions& options);

struct SparseAttentionOptions {
  TORCH_ARG(int64_t, side) = 100;
  TORCH_ARG(int64_t, channels) = 1;
  TORCH_ARG(int64_t, glimpses) = 1;
  TORCH_ARG(int64_t, glimpse_size) = 32;
  TORCH_ARG(double, source_width) = 1.0;
  TORCH_ARG(int64_t, source_hidden) = 512;
  TORCH_ARG(int64_t, classifier_hidden) = 128;
  TORCH_ARG(int64_t, classes) = 10;
  // Sampling (the paper: alpha_g = 16, alpha_l = 32, region (20, 20)).
  TORCH_ARG(int64_t, num_global) = 16;
  TORCH_ARG(int64_t, num_local) = 32;
  TORCH_ARG(int64_t, region) = 20;
  // The glimpses' starting variance in px^2; 0: the paper's
  // parametrisation at raw 0 (softplus(2) x side x 0.1 + 0.1, 21.4 px^2
  // at side 100).
  TORCH_ARG(double, initial_variance) = 0;
  TORCH_ARG(int64_t, seed) = 0;
  // Evaluation: the mean of this many sampled glimpses; 0: rounded
  // positions (GlimpseOptions::eval_samples).
  TORCH_ARG(int64_t, eval_samples) = 1;
};

class SparseAttentionImpl : public torch::nn::Module {
 public:
  explicit SparseAttentionImpl(SparseAttentionOptions options = {});

  struct Output {
    at::Tensor logits;     // [B, classes]
    at::Tensor raw_boxes;  // [B, glimpses, 4] (GlimpseBoxes gives pixels)
    at::Tensor glimpses;   // [B, glimpses, channels, k, k]
  };
  // images [B, channels, side, side]
  Output forward(const at::Tensor& images);

  SparseAttentionOptions options;
  torch::nn::Sequential source{nullptr};
  GlimpseLayer glimpse{nullptr};
  torch::nn::Sequential classifier{nullptr};
};
TORCH_MODULE(SparseAttention);

// The glimpse layer's options and the classifier (flattened glimpses ->
// classifier_hidden ReLU -> classes) that SparseAttention builds from
// `options`; for models that read the same glimpses from boxes placed
// otherwise (the attention experiment's oracles).
GlimpseOptions SparseAttentionGlimpseOptions(const SparseAttentionOptions& options);
torch::nn::Sequential SparseAttentionClassifier(const SparseAttentionOptions& options);

// Keeps raw box values (before the sigmoid of GlimpseBoxes) out of
// saturation: mean over boxes of sum_i relu(|raw_i| - bound)^2. Without it,
// Adam can drive a raw value far past where the sigmoid is flat (it
// normalises even a vanishing gradient to full-size steps), and the box
// stays degenerate for good: measured on 60 x 60 cluttered MNIST, one
// 32 x 32 glimpse, lr 1e-3, two runs of 60,000 images collapsed to a
// one-pixel-high box (raw -20 to -65, error at chance), where runs on
// 6,000 - 19,200 images learned. bound 4: corners within 1.8 % of the image
// of its edges are free.
at::Tensor BoxSaturationPenalty(const at::Tensor& raw_boxes, double bound = 4.0);

// Checks images are [B, channels, side, side] floating point; an error
// names `op` and the shape seen.
void CheckImages(const char* op, const at::Tensor& images, int64_t channels, int64_t side);

}  // namespace sparse_hyper
}  // namespace indexgrad
