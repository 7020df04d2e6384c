// ReinforceMaskOperator: the REINFORCE baseline for mask recovery. K
// categorical distributions over the H x W pixel positions (learned
// logits); each call samples one pixel per distribution, the mask is their
// union, and the logits learn through the score function of the oracle's
// MSE only:
//
//   at::Tensor mask = op->Mask();                      // [H, W] in {0, 1}
//   at::Tensor mse = oracle.Mse(mask);
//   op->ScoreSurrogate(mse).backward();                // REINFORCE
//
// ScoreSurrogate(L) = (L - baseline) * log p(sample), L detached, with an
// exponential moving-average baseline (on by default).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "diff_masks/mask_operator.h"
#include "diff_masks/operator_factory.h"

namespace indexgrad {
namespace baselines {

struct ReinforceMaskOptions {
  ReinforceMaskOptions(int64_t height, int64_t width, int64_t k)
      : height_(height), width_(width), k_(k) {}
  TORCH_ARG(int64_t, height);
  TORCH_ARG(int64_t, width);
  TORCH_ARG(int64_t, k);
  TORCH_ARG(bool, use_baseline) = true;
  TORCH_ARG(double, baseline_decay) = 0.9;
};

class ReinforceMaskOperatorImpl : public diff_masks::MaskOperator {
 public:
  explicit ReinforceMaskOperatorImpl(ReinforceMaskOptions options);
  // A sampled mask (no gradient path: use ScoreSurrogate).
  at::Tensor Mask() override;
  // loss: the oracle's scalar MSE of the last Mask().
  at::Tensor ScoreSurrogate(const at::Tensor& loss);
  at::Tensor Objective(const at::Tensor& mse) override { return ScoreSurrogate(mse); }
  // Each distribution's most likely pixel.
  at::Tensor Indices() override;

  ReinforceMaskOptions options;
  at::Tensor logits;    // [k, H * W]
  at::Tensor baseline;  // [] buffer
  at::Tensor baseline_initialised;  // [] buffer

 private:
  at::Tensor last_log_prob_;  // []
};
TORCH_MODULE(ReinforceMaskOperator);

// Teaches a factory the name "reinforce" (no settings of its own).
void AddReinforceMaskOperator(diff_masks::MaskOperatorFactory& factory);

}  // namespace baselines
}  // namespace indexgrad
