// What the Gaussian and MLP operators share: the geometric anneal of their
// stddev and the rescue of stuck points (documented at GaussianMaskOptions).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace indexgrad {
namespace diff_masks {

namespace detail {
// start -> end geometrically over the first `fraction` of `total` steps.
double AnnealGeometric(double start, double end, double fraction, int64_t step, int64_t total);

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
}  // namespace detail

}  // namespace diff_masks
}  // namespace indexgrad
