#include "diff_masks/mlp_mask.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "kernels/common/schedules.h"

namespace indexgrad {
namespace diff_masks {

MlpMaskOperatorImpl::MlpMaskOperatorImpl(MlpMaskOptions options_, MaskDecoder decoder_)
    : options(options_) {
  const char* op = "MlpMaskOperator";
  TORCH_CHECK(options.k() >= 1, op, ": k must be >= 1, got ", options.k());
  TORCH_CHECK(options.anneal_fraction() > 0 && options.anneal_fraction() <= 1, op,
              ": anneal_fraction must be in (0, 1], got ", options.anneal_fraction());
  TORCH_CHECK(options.adam_eps() >= 0 && std::isfinite(options.adam_eps()), op,
              ": adam_eps must be a finite number >= 0, got ", options.adam_eps());
  TORCH_CHECK(decoder_, op, ": decoder is empty");
  TORCH_CHECK(decoder_->options.height() == options.height() &&
                  decoder_->options.width() == options.width(),
              op, ": the decoder renders ", decoder_->options.height(), " x ",
              decoder_->options.width(), " masks, the operator was asked for ",
              options.height(), " x ", options.width());
  const double lo = decoder_->options.min_stddev(), hi = decoder_->max_stddev();
  stddev_start_ = options.stddev_start() > 0 ? options.stddev_start() : hi;
  stddev_end_ = options.stddev_end() > 0 ? options.stddev_end() : lo;
  TORCH_CHECK(options.stddev_start() >= 0 && options.stddev_end() >= 0 &&
                  stddev_start_ <= hi * (1 + 1e-9) && stddev_end_ >= lo * (1 - 1e-9),
              op, ": stddev_start and stddev_end must be within the decoder's trained range [",
              lo, ", ", hi, "] (0: its ends), got ", options.stddev_start(), " and ",
              options.stddev_end());
  stddev_ = stddev_start_;
  decoder = register_module("decoder", decoder_);
  for (at::Tensor& p : decoder->parameters()) p.requires_grad_(false);
  decoder->eval();
  detail::PointRescue::Check(op, options.rescue_every(), options.rescue_stddev(),
                             options.rescue_steps(), options.rescue_peak());
  const double rescue_stddev =
      options.rescue_stddev() > 0 ? options.rescue_stddev() : stddev_start_;
  TORCH_CHECK(rescue_stddev >= lo * (1 - 1e-9) && rescue_stddev <= hi * (1 + 1e-9), op,
              ": rescue_stddev must be within the decoder's trained range [", lo, ", ", hi,
              "], got ", rescue_stddev);
  rescue_ = detail::PointRescue(options.rescue_every(), rescue_stddev, options.rescue_steps(),
                                options.rescue_peak(), stddev_end_);
  const at::Tensor any = decoder->network->parameters().front();
  points = register_parameter("points", at::rand({options.k(), 2}, any.options()));
  rescued_at = register_buffer("rescued_at", at::full({options.k()}, -1, at::kLong));
}

at::Tensor MlpMaskOperatorImpl::Indices() {
  const at::Tensor scale = at::tensor({static_cast<double>(options.height() - 1),
                                       static_cast<double>(options.width() - 1)},
                                      points.options());
  return at::floor(points.detach() * scale + 0.5).to(at::kLong);
}

at::Tensor MlpMaskOperatorImpl::PointStddevs() const {
  return rescue_.Stddevs(rescued_at, stddev_, step_);
}

at::Tensor MlpMaskOperatorImpl::PointDistributions(const at::Tensor& stddevs) {
  return at::softmax(decoder->PointLogits(points, stddevs.to(points.options())), 1);
}

at::Tensor MlpMaskOperatorImpl::Mask() {
  // Per-point stddevs once any point has been rescued (the buffer, so that a
  // resumed run renders as the saved one did).
  if (options.rescue_every() > 0 && rescued_at.max().item<int64_t>() >= 0) {
    return PointDistributions(PointStddevs())
        .sum(0)
        .view({options.height(), options.width()});
  }
  return decoder->Render(points.unsqueeze(0), stddev_).squeeze(0);  // [H, W]
}

void MlpMaskOperatorImpl::SetProgress(int64_t step, int64_t total) {
  step_ = step;
  total_ = total;
  stddev_ = GeometricAnneal(stddev_start_, stddev_end_, options.anneal_fraction(), step, total);
}

void MlpMaskOperatorImpl::AfterStep() {
  at::NoGradGuard no_grad;
  rescued_now_.clear();
  points.clamp_(0, 1);
  if (!rescue_.Due(stddev_, step_, total_)) return;
  const at::Tensor stddevs = PointStddevs();
  const at::Tensor peaks = std::get<0>(PointDistributions(stddevs).max(1));
  rescued_now_ = rescue_.Mark(rescued_at, Indices(), peaks, stddevs, options.height(),
                              options.width(), step_);
}

std::vector<MaskOperator::Rows> MlpMaskOperatorImpl::RestartedRows() {
  return detail::RescuedRows(points, rescued_now_);
}

void MlpMaskOperatorImpl::train(bool on) {
  MaskOperator::train(on);
  decoder->eval();
}

}  // namespace diff_masks
}  // namespace indexgrad
