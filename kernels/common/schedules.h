// Learning-rate and annealing schedules shared by the training loops of
// experiments and by the modules that own a schedule (mask operators).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace indexgrad {

// lr at `step` of a cosine from lr (step 0) to 0 (step `steps`).
inline double CosineDecay(double lr, int64_t step, int64_t steps) {
  return lr * 0.5 * (1 + std::cos(M_PI * static_cast<double>(step) / static_cast<double>(steps)));
}

// start -> end geometrically over the first `fraction` of `total` steps,
// then end (end at once when total <= 0). start and end > 0.
inline double GeometricAnneal(double start, double end, double fraction, int64_t step,
                              int64_t total) {
  const double a =
      total > 0
          ? std::min(1.0, static_cast<double>(step) / (fraction * static_cast<double>(total)))
          : 1.0;
  return start * std::pow(end / start, a);
}

}  // namespace indexgrad
