// Learning-rate and annealing schedules shared by the training loops of
// experiments and by the modules that own a schedule (mask operators).
#pragma once

#include <cmath>
#include <cstdint>

namespace indexgrad {

// lr at `step` of a cosine from lr (step 0) to 0 (step `steps`).
inline double CosineDecay(double lr, int64_t step, int64_t steps) {
  return lr * 0.5 * (1 + std::cos(M_PI * static_cast<double>(step) / static_cast<double>(steps)));
}

}  // namespace indexgrad
