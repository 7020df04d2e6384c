// The Gumbel mask operator (Shekhar et al. 2023, method 1).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/nn/modules/container/sequential.h>

#include <cstdint>
#include <vector>

#include "diff_masks/mask_operator.h"

namespace indexgrad {
namespace diff_masks {

// Method 1: K channels, each a categorical over the H x W pixels picked by
// a hard Gumbel-softmax (one-hot forward, softmax gradient backward:
// straight-through); the K one-hot channels are summed, and, with `clamp`,
// clamped to [0, 1] (straight-through). Unclamped, two channels on one
// pixel read 2, which the MSE pushes apart. The logits are either
//   network = true   the paper's: a conv encoder (2 convolutions, each
//                    followed by 2x2 max pooling) and decoder (2 stride-2
//                    transposed convolutions) map a fixed random input
//                    image to K logit channels (H and W multiples of 4);
//                    the network weights are learned;
//   network = false  a learned [K, H * W] table (the REINFORCE baseline's
//                    parametrisation, with a reparametrised gradient).
// The Gumbel noise is scaled by a factor annealed linearly from 1 to 0 over
// the first noise_fraction of training: a random search first, then the
// forward pass is the logits' argmax, the operator's Indices(). The table
// learns far better than the paper's network (docs/mask_recovery.md).
struct GumbelMaskOptions {
  GumbelMaskOptions(int64_t height, int64_t width, int64_t k)
      : height_(height), width_(width), k_(k) {}
  TORCH_ARG(int64_t, height);
  TORCH_ARG(int64_t, width);
  TORCH_ARG(int64_t, k);
  TORCH_ARG(bool, network) = false;
  TORCH_ARG(int64_t, channels) = 16;  // network: encoder width (then 2x)
  TORCH_ARG(double, temperature) = 0.5;
  TORCH_ARG(double, noise_fraction) = 0.8;
  TORCH_ARG(bool, clamp) = false;
  // The table only (network = false). Once the noise has faded, a channel
  // whose pixel the loss wants dimmer (a background pixel, or one another
  // channel holds too) takes the mask's gradient itself as its logits'
  // gradient (the identity straight-through estimator), the others keep the
  // softmax's (GumbelEndgameSum); and the logits' optimiser moments restart
  // once (RestartedRows, at the first step without noise). The softmax
  // gradient reaches a pixel in proportion to its probability, so a channel
  // parked on background, its logits at the empty target pixels some 8
  // below its own, never moves there. From first_quiet_step() on,
  // LearningRate() is a new cosine from endgame_lr to 0 at the end (so that
  // the last steps' momentum moves no channel off its pixel).
  TORCH_ARG(bool, endgame) = false;
  TORCH_ARG(double, endgame_lr) = 0.05;
  // LearningRate(): a cosine from the base rate to 0 over the run (before
  // the endgame, if any); false: constant.
  TORCH_ARG(bool, cosine_lr) = false;
};

class GumbelMaskOperatorImpl : public MaskOperator {
 public:
  explicit GumbelMaskOperatorImpl(GumbelMaskOptions options);
  // A fresh Gumbel sample per call (scaled by noise_scale()).
  at::Tensor Mask() override;
  void SetProgress(int64_t step, int64_t total) override;
  double LearningRate(int64_t step, int64_t total, double lr) override;
  std::vector<Rows> RestartedRows() override;  // endgame: every row, once
  double noise_scale() const { return noise_scale_; }
  // The first step of `total` without noise: ceil(noise_fraction * total).
  int64_t first_quiet_step(int64_t total) const;
  at::Tensor Logits();  // [k, H * W]
  at::Tensor Indices() override;  // each channel's most likely pixel

  GumbelMaskOptions options;
  torch::nn::Sequential network{nullptr};  // network = true
  at::Tensor input;   // network = true: [1, 1, H, W] fixed random image (buffer)
  at::Tensor logits;  // network = false: [k, H * W] (parameter)

 private:
  double noise_scale_ = 1.0;
  bool endgame_begins_ = false;  // at the step SetProgress was last given
};
TORCH_MODULE(GumbelMaskOperator);

// The Gumbel table's endgame sum (GumbelMaskOptions::endgame): logits [k, P]
// -> [P], the number of channels whose argmax is each pixel; backward: the
// output's gradient g itself for each channel with g > 0 at its pixel, the
// softmax(logits / temperature) straight-through gradient for the others.
at::Tensor GumbelEndgameSum(const at::Tensor& logits, double temperature);

}  // namespace diff_masks
}  // namespace indexgrad
