// The variance-reducing baseline both REINFORCE baselines use: an
// exponential moving average of the loss, started at the first loss seen.
// State lives in two scalar buffers of the owning module (so checkpoints
// keep it).
#pragma once

#include <ATen/ATen.h>

namespace indexgrad {
namespace baselines {

// Returns the baseline to subtract from `loss` now (the average before this
// loss), then folds `loss` into it: b <- decay * b + (1 - decay) * loss.
inline double UpdateMovingBaseline(at::Tensor& baseline, at::Tensor& initialised,
                                   double loss, double decay) {
  at::NoGradGuard no_grad;
  if (initialised.item<double>() == 0) {
    baseline.fill_(loss);
    initialised.fill_(1);
  }
  const double before = baseline.item<double>();
  baseline.fill_(decay * before + (1 - decay) * loss);
  return before;
}

}  // namespace baselines
}  // namespace indexgrad
