#include "diff_masks/point_rescue.h"

#include <algorithm>
#include <cmath>

#include "kernels/common/schedules.h"

namespace indexgrad {
namespace diff_masks {

namespace detail {

void PointRescue::Check(const char* op, int64_t every, double stddev, int64_t steps,
                        double peak) {
  TORCH_CHECK(every >= 0 && steps >= 1 && stddev >= 0 && std::isfinite(stddev), op,
              ": rescue_every must be >= 0, rescue_steps >= 1 and rescue_stddev >= 0 (0: the "
              "starting stddev), got ",
              every, ", ", steps, " and ", stddev);
  TORCH_CHECK(peak >= 0 && peak <= 1, op,
              ": rescue_peak must be in [0, 1] (0: rescue doubled points only), got ", peak);
}

PointRescue::PointRescue(int64_t every, double stddev, int64_t steps, double peak, double end)
    : every_(every), stddev_(stddev), steps_(steps), peak_(peak), end_(end) {}

bool PointRescue::Due(double global, int64_t step, int64_t total) const {
  return every_ > 0 && global <= end_ * (1 + 1e-9) && (step + 1) % every_ == 0 &&
         step + 1 + 2 * steps_ <= total;
}

at::Tensor PointRescue::Stddevs(const at::Tensor& rescued_at, double global,
                                int64_t step) const {
  const int64_t k = rescued_at.size(0);
  at::Tensor out = at::full({k}, global, at::kDouble);
  if (every_ <= 0) return out;
  const at::Tensor rescued = rescued_at.to(at::kCPU).contiguous();
  const int64_t* at_step = rescued.data_ptr<int64_t>();
  double* o = out.data_ptr<double>();
  for (int64_t i = 0; i < k; ++i) {
    if (at_step[i] < 0 || step < at_step[i]) continue;
    o[i] = std::max(o[i], GeometricAnneal(stddev_, end_, 1.0, step - at_step[i], steps_));
  }
  return out;
}

std::vector<int64_t> PointRescue::Mark(at::Tensor& rescued_at, const at::Tensor& pixels,
                                       const at::Tensor& peaks, const at::Tensor& stddevs,
                                       int64_t height, int64_t width, int64_t step) const {
  // The later of two points on one pixel is rescued, and any point with
  // less than peak_ of its mass on its fullest pixel; points still
  // annealing from an earlier rescue are left to settle.
  const at::Tensor px_cpu = pixels.to(at::kCPU).contiguous();
  const at::Tensor peak_cpu = peaks.to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor sd_cpu = stddevs.to(at::kCPU, at::kDouble).contiguous();
  const int64_t* px = px_cpu.data_ptr<int64_t>();
  const double* peak = peak_cpu.data_ptr<double>();
  const double* sd = sd_cpu.data_ptr<double>();
  at::Tensor rescued = rescued_at.to(at::kCPU).contiguous();
  int64_t* at_step = rescued.data_ptr<int64_t>();
  std::vector<uint8_t> taken(height * width, 0);
  std::vector<int64_t> now;
  for (int64_t i = 0; i < rescued.size(0); ++i) {
    uint8_t& t = taken[px[2 * i] * width + px[2 * i + 1]];
    const bool doubled = t != 0;
    t = 1;
    if (sd[i] > end_ * (1 + 1e-9)) continue;  // still annealing
    if (doubled || peak[i] < peak_) {
      at_step[i] = step + 1;
      now.push_back(i);
    }
  }
  rescued_at.copy_(rescued);
  return now;
}

std::vector<MaskOperator::Rows> RescuedRows(const at::Tensor& points,
                                            const std::vector<int64_t>& rescued) {
  if (rescued.empty()) return {};
  return {{points, at::tensor(rescued, at::kLong).to(points.device())}};
}

}  // namespace detail

}  // namespace diff_masks
}  // namespace indexgrad
