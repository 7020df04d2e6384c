// The interface of the mask operators of Shekhar et al. 2023: learnable
// parameters -> a mask [H, W] with about K pixels on (in [0, 1]; the
// Gaussian operator's reads k where k of its points share a pixel). Every
// operator is a torch::nn::Module whose parameters() are what gradient
// descent trains. The operators: gaussian_mask.h, gumbel_mask.h,
// mlp_mask.h; by name: operator_factory.h.
//
//   GaussianMaskOperator op(GaussianMaskOptions(32, 32, /*k=*/512));
//   torch::optim::Adam adam(op->parameters(), torch::optim::AdamOptions(
//       lr).eps(op->AdamEpsilon()));
//   for (int64_t step = 0; step < steps; ++step) {
//     op->SetProgress(step, steps);        // schedules (stddev annealing)
//     SetLearningRate(adam, op->LearningRate(step, steps, lr));
//     at::Tensor loss = op->Objective(oracle.Mse(op->Mask()));
//     ... backward, adam.step() ...
//     op->AfterStep();
//     RestartMoments(*op, adam);           // optimizer_state.h
//   }
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <vector>

namespace indexgrad {
namespace diff_masks {


class MaskOperator : public torch::nn::Module {
 public:
  // [H, W] in [0, 1].
  virtual at::Tensor Mask() = 0;
  // Training progress in [0, 1] for operators with schedules.
  virtual void SetProgress(int64_t step, int64_t total) {
    (void)step;
    (void)total;
  }
  // Called after each optimiser step (projections, perturbations).
  virtual void AfterStep() {}
  // What gradient descent minimises given the oracle's MSE of the last
  // Mask(): the MSE itself for operators differentiable in their mask;
  // score-function operators (baselines::ReinforceMaskOperator) return
  // their surrogate.
  virtual at::Tensor Objective(const at::Tensor& mse) { return mse; }
  // The pixels the operator's K indices stand for now, [K, 2] int64 (row,
  // column), possibly outside the image or repeated: what it has learned,
  // as opposed to its rendered mask (MaskOracle::IndexIoU scores them).
  virtual at::Tensor Indices() = 0;
  // Rows of parameters that the last AfterStep() put into another regime
  // (the Gaussian operator's rescued points), whose optimiser moments no
  // longer fit them: RestartMoments clears them.
  struct Rows {
    at::Tensor parameter;
    at::Tensor rows;  // [n] int64 indices into parameter's first dimension
  };
  virtual std::vector<Rows> RestartedRows() { return {}; }
  // The learning rate of `step` of `total` for a base rate `lr`, given
  // after SetProgress(step, total): operators whose schedules (stddev
  // annealing, fading noise) call for a matching learning-rate schedule
  // return it (options of their own say which); the default keeps `lr`.
  virtual double LearningRate(int64_t step, int64_t total, double lr) {
    (void)step;
    (void)total;
    return lr;
  }
  // The Adam epsilon this operator's gradients need: Adam's usual 1e-8
  // unless the operator's gradients are far smaller (the point operators).
  virtual double AdamEpsilon() const { return 1e-8; }
};

// Row-major pixel indices [K] int64 of an image `width` wide -> [K, 2]
// (row, column): for operators whose indices are categorical over pixels.
at::Tensor PixelsOfFlat(const at::Tensor& flat, int64_t width);

}  // namespace diff_masks
}  // namespace indexgrad
