// Optimiser state of mask operators' parameters: clearing the moments of
// rows that an operator's AfterStep() put into another regime.
#pragma once

#include <torch/optim/optimizer.h>

#include "diff_masks/mask_operator.h"

namespace indexgrad {
namespace diff_masks {

// Call after op.AfterStep() with the optimiser training op: zeroes the
// moments (Adam's first and second, AdamW's, SGD's momentum buffer) of
// op.RestartedRows(), so that each such row's next steps are scaled by its
// own new gradients rather than by the memory of old ones (Adam's second
// moment forgets over about 1 / (1 - beta2) = 1,000 steps). Rows without
// optimiser state yet are left alone; an optimiser of another kind is an
// error naming it.
void RestartMoments(MaskOperator& op, torch::optim::Optimizer& optimizer);

// The optimiser's state of `parameter`, nullptr before its first step.
// (LibTorch keys the state by the parameter's TensorImpl address, as a
// string up to 2.0 and as a pointer since; this works with both.)
torch::optim::OptimizerParamState* FindOptimizerState(torch::optim::Optimizer& optimizer,
                                                      const at::Tensor& parameter);

}  // namespace diff_masks
}  // namespace indexgrad
