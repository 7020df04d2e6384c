#include "diff_masks/mask_operator.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "kernels/gaussian_splat/gaussian_splat.h"

namespace indexgrad {
namespace diff_masks {

GaussianMaskOperatorImpl::GaussianMaskOperatorImpl(GaussianMaskOptions options_)
    : options(options_), sigma_(options_.sigma_start()) {
  const char* op = "GaussianMaskOperator";
  TORCH_CHECK(options.height() >= 1 && options.width() >= 1, op,
              ": height and width must be positive, got ", options.height(),
              " x ", options.width());
  TORCH_CHECK(options.k() >= 1, op, ": k must be >= 1, got ", options.k());
  TORCH_CHECK(options.sigma_start() > 0 && options.sigma_end() > 0, op,
              ": sigma_start and sigma_end must be > 0, got ",
              options.sigma_start(), " and ", options.sigma_end());
  TORCH_CHECK(options.anneal_fraction() > 0 && options.anneal_fraction() <= 1,
              op, ": anneal_fraction must be in (0, 1], got ",
              options.anneal_fraction());
  const at::Tensor scale = at::tensor(
      {static_cast<float>(options.height() - 1),
       static_cast<float>(options.width() - 1)});
  points = register_parameter("points", at::rand({options.k(), 2}) * scale);
}

void GaussianMaskOperatorImpl::SetProgress(int64_t step, int64_t total) {
  const double a = total > 0
      ? std::min(1.0, static_cast<double>(step) /
                          (options.anneal_fraction() * static_cast<double>(total)))
      : 1.0;
  sigma_ = options.sigma_start() *
           std::pow(options.sigma_end() / options.sigma_start(), a);
}

at::Tensor GaussianMaskOperatorImpl::Mask() {
  const at::Tensor sum = gaussian_splat(points.unsqueeze(0), sigma_,
                                        options.height(), options.width(),
                                        options.tolerance())
                             .squeeze(0);  // [H, W]
  // Clamp in the forward pass, identity in the backward pass.
  return sum + (sum.clamp(0, 1) - sum).detach();
}

void GaussianMaskOperatorImpl::ClampPoints() {
  at::NoGradGuard no_grad;
  points.select(1, 0).clamp_(0, options.height() - 1);
  points.select(1, 1).clamp_(0, options.width() - 1);
}

}  // namespace diff_masks
}  // namespace indexgrad
