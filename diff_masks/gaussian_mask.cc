#include "diff_masks/gaussian_mask.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "diff_masks/pixel_masses.h"
#include "kernels/common/schedules.h"

namespace indexgrad {
namespace diff_masks {

GaussianMaskOperatorImpl::GaussianMaskOperatorImpl(GaussianMaskOptions options_)
    : options(options_) {
  const char* op = "GaussianMaskOperator";
  TORCH_CHECK(options.height() >= 1 && options.width() >= 1, op,
              ": height and width must be positive, got ", options.height(),
              " x ", options.width());
  TORCH_CHECK(options.k() >= 1, op, ": k must be >= 1, got ", options.k());
  TORCH_CHECK(options.stddev_start() >= 0 && options.stddev_end() > 0, op,
              ": stddev_start and stddev_end must be > 0 (stddev_start 0: a quarter of the "
              "smaller side), got ",
              options.stddev_start(), " and ", options.stddev_end());
  TORCH_CHECK(options.anneal_fraction() > 0 && options.anneal_fraction() <= 1,
              op, ": anneal_fraction must be in (0, 1], got ",
              options.anneal_fraction());
  TORCH_CHECK(options.lr_end() >= 0 && std::isfinite(options.lr_end()), op,
              ": lr_end must be a finite number >= 0 (0: constant), got ", options.lr_end());
  TORCH_CHECK(options.adam_eps() >= 0 && std::isfinite(options.adam_eps()), op,
              ": adam_eps must be a finite number >= 0, got ", options.adam_eps());
  detail::PointRescue::Check(op, options.rescue_every(), options.rescue_stddev(),
                             options.rescue_steps(), options.rescue_peak());
  stddev_start_ = options.stddev_start() > 0
                      ? options.stddev_start()
                      : static_cast<double>(std::min(options.height(), options.width())) / 4;
  stddev_ = stddev_start_;
  rescue_ = detail::PointRescue(
      options.rescue_every(),
      options.rescue_stddev() > 0 ? options.rescue_stddev() : stddev_start_,
      options.rescue_steps(), options.rescue_peak(), options.stddev_end());
  const at::Tensor scale = at::tensor(
      {static_cast<float>(options.height() - 1),
       static_cast<float>(options.width() - 1)});
  points = register_parameter("points", at::rand({options.k(), 2}) * scale);
  rescued_at = register_buffer("rescued_at", at::full({options.k()}, -1, at::kLong));
}

void GaussianMaskOperatorImpl::SetProgress(int64_t step, int64_t total) {
  step_ = step;
  total_ = total;
  stddev_ = GeometricAnneal(stddev_start_, options.stddev_end(), options.anneal_fraction(),
                            step, total);
}

double GaussianMaskOperatorImpl::LearningRate(int64_t step, int64_t total, double lr) {
  if (!(options.lr_end() > 0) || lr <= options.lr_end()) return lr;
  return GeometricAnneal(lr, options.lr_end(), options.anneal_fraction(), step, total);
}

at::Tensor GaussianMaskOperatorImpl::PointStddevs() const {
  return rescue_.Stddevs(rescued_at, stddev_, step_);
}

at::Tensor GaussianMaskOperatorImpl::Mask() {
  const auto render = [this](const auto& stddev) {
    const at::Tensor rows = PixelMasses(points.select(1, 0), stddev, options.height());
    const at::Tensor cols = PixelMasses(points.select(1, 1), stddev, options.width());
    return rows.t().mm(cols);  // [H, W]
  };
  // Per-point stddevs once any point has been rescued (the buffer, so that a
  // resumed run renders as the saved one did).
  if (options.rescue_every() > 0 && rescued_at.max().item<int64_t>() >= 0) {
    return render(PointStddevs().to(points.device()));
  }
  return render(stddev_);
}

void GaussianMaskOperatorImpl::AfterStep() {
  at::NoGradGuard no_grad;
  rescued_now_.clear();
  constexpr double kInside = 0.49;
  points.select(1, 0).clamp_(-kInside, options.height() - 1 + kInside);
  points.select(1, 1).clamp_(-kInside, options.width() - 1 + kInside);
  if (!rescue_.Due(stddev_, step_, total_)) return;
  const at::Tensor stddevs = PointStddevs();
  const at::Tensor p = points.detach().to(at::kCPU, at::kDouble);
  const at::Tensor peaks =
      std::get<0>(PixelMasses(p.select(1, 0), stddevs, options.height()).max(1)) *
      std::get<0>(PixelMasses(p.select(1, 1), stddevs, options.width()).max(1));
  rescued_now_ = rescue_.Mark(rescued_at, Indices(), peaks, stddevs, options.height(),
                              options.width(), step_);
}

std::vector<MaskOperator::Rows> GaussianMaskOperatorImpl::RestartedRows() {
  return detail::RescuedRows(points, rescued_now_);
}

at::Tensor GaussianMaskOperatorImpl::Indices() {
  return at::floor(points.detach() + 0.5).to(at::kLong);
}

}  // namespace diff_masks
}  // namespace indexgrad
