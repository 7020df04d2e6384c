// What the Gaussian and MLP operators share: the rescue of stuck points
// (documented at GaussianMaskOptions). Their stddev's anneal is
// GeometricAnneal (kernels/common/schedules.h).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "diff_masks/mask_operator.h"

namespace indexgrad {
namespace diff_masks {

namespace detail {

// The rescue of stuck points shared by the Gaussian and MLP operators
// (documented at GaussianMaskOptions): its schedule, each point's stddev,
// and which points to rescue.
class PointRescue {
 public:
  PointRescue() = default;
  // every 0: never; stddev: a rescued point's starting stddev; end: the
  // operator's final stddev.
  PointRescue(int64_t every, double stddev, int64_t steps, double peak, double end);
  // The options as a user gives them (stddev 0: the operator's starting
  // one); errors name `op` and the values.
  static void Check(const char* op, int64_t every, double stddev, int64_t steps, double peak);
  // Whether the AfterStep() of `step` (of `total`) looks for points to
  // rescue, the operator's stddev being `global`.
  bool Due(double global, int64_t step, int64_t total) const;
  // [k] double on the CPU: `global`, or for a point rescued at a step <=
  // `step` (rescued_at [k] int64, -1: never), the larger of `global` and
  // its own stddev annealed from `stddev` to `end` over `steps` steps.
  at::Tensor Stddevs(const at::Tensor& rescued_at, double global, int64_t step) const;
  // pixels [k, 2] int64 on the image, peaks [k] (each point's largest pixel
  // share), stddevs [k] (Stddevs()): marks the points to rescue in
  // rescued_at (step + 1) and returns them.
  std::vector<int64_t> Mark(at::Tensor& rescued_at, const at::Tensor& pixels,
                            const at::Tensor& peaks, const at::Tensor& stddevs,
                            int64_t height, int64_t width, int64_t step) const;

 private:
  int64_t every_ = 0;
  double stddev_ = 1;
  int64_t steps_ = 1;
  double peak_ = 0, end_ = 1;
};

// The rows of `points` [k, 2] that a rescue just marked (Mark's result), as
// MaskOperator::RestartedRows gives them: none when `rescued` is empty.
std::vector<MaskOperator::Rows> RescuedRows(const at::Tensor& points,
                                            const std::vector<int64_t>& rescued);
}  // namespace detail

}  // namespace diff_masks
}  // namespace indexgrad
