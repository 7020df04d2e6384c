// The Gaussian mask operator (Shekhar et al. 2023, method 2).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <vector>

#include "diff_masks/mask_operator.h"
#include "diff_masks/point_rescue.h"

namespace indexgrad {
namespace diff_masks {

// Method 2: K learnable 2-D points, each an isotropic Gaussian of standard
// deviation `stddev` in pixels (the paper's covariance (1/delta) I: delta =
// 1/stddev^2; the sparse layer's sigma, by contrast, is a variance). The
// mask is the points' pixel masses summed: each Gaussian integrated over
// each pixel (separable: a row mass times a column mass, both from erf),
// normalised to total 1 within the image. So a point always contributes
// exactly one pixel's worth, however wide: the MSE asks for one point per
// target pixel at every stddev, a point gains nothing by hiding past the
// border, and two points on one pixel read 2 there (the sum is not
// clamped), which the MSE pushes apart. stddev is annealed geometrically
// from stddev_start to stddev_end over the first anneal_fraction of
// training: wide Gaussians (a quarter of the image) carry points across it,
// narrow ones put each on one pixel, where its mass is nearly 1 and
// Indices() (the points rounded) is what the mask shows. Pixel masses,
// unlike peak-1 Gaussians clamped to [0, 1], recover large targets
// (docs/mask_recovery.md).
// Memory and time: K x (H + W) masses and one [H, K] x [K, W] product.
struct GaussianMaskOptions {
  GaussianMaskOptions(int64_t height, int64_t width, int64_t k)
      : height_(height), width_(width), k_(k) {}
  TORCH_ARG(int64_t, height);
  TORCH_ARG(int64_t, width);
  TORCH_ARG(int64_t, k);
  TORCH_ARG(double, stddev_start) = 0;  // 0: a quarter of the smaller side
  TORCH_ARG(double, stddev_end) = 0.15;
  TORCH_ARG(double, anneal_fraction) = 0.4;
  // Rescue of stuck points (rescue_every 0: off). Once the stddev has
  // reached stddev_end, every `rescue_every` steps each point that
  //   - rounds to a pixel an earlier point rounds to (a doubled pixel), or
  //   - has less than `rescue_peak` of its mass on any one pixel (a point
  //     parked on a pixel corner or border, spreading a surplus over
  //     background pixels: a local minimum of its squared error)
  // gets its own stddev back at rescue_stddev (0: the starting stddev),
  // annealed geometrically to stddev_end over rescue_steps steps: wide
  // again, it feels the pull of empty target pixels several pixels away,
  // which at 0.15 px nothing conveys (and the two points of a pair, seeing
  // the same gradient, would never part). No rescue starts in the last 2
  // rescue_steps steps. Uses only the points, never the target. Train with
  // RestartMoments after each AfterStep(): a rescued point's gradients are
  // orders of magnitude smaller than the narrow ones Adam's moments
  // remember, so without it the point barely moves while it is wide.
  // And give Adam an epsilon far below those gradients (adam_eps,
  // AdamEpsilon()): the MSE's mean over H x W pixels makes a wide
  // point's gradient tiny on large images (about 1e-9 at 128 x 128), which
  // Adam's usual 1e-8 turns into no step; on larger images let the
  // learning rate fall with the stddev (lr_end), or narrow points jump
  // between pixels. What each part buys: docs/mask_recovery.md.
  TORCH_ARG(int64_t, rescue_every) = 25;
  TORCH_ARG(double, rescue_stddev) = 0;
  TORCH_ARG(int64_t, rescue_steps) = 100;
  TORCH_ARG(double, rescue_peak) = 0.5;
  // LearningRate(): the base rate falls geometrically to lr_end along with
  // the stddev (over the first anneal_fraction of training); 0: constant.
  TORCH_ARG(double, lr_end) = 0;
  // AdamEpsilon().
  TORCH_ARG(double, adam_eps) = 1e-16;
};

class GaussianMaskOperatorImpl : public MaskOperator {
 public:
  explicit GaussianMaskOperatorImpl(GaussianMaskOptions options);
  // [H, W] >= 0: about 1 on pixels holding a point, k on pixels holding k.
  at::Tensor Mask() override;
  void SetProgress(int64_t step, int64_t total) override;
  double LearningRate(int64_t step, int64_t total, double lr) override;
  double AdamEpsilon() const override { return options.adam_eps(); }
  double stddev() const { return stddev_; }
  at::Tensor Indices() override;  // the points rounded half up
  // Keeps the points on the image (within 0.49 px of the border pixels'
  // centres, so that each rounds to a pixel of the image).
  void AfterStep() override;
  // The points the last AfterStep() rescued.
  std::vector<Rows> RestartedRows() override;

  // The points' own stddevs now: [k], the global one except for rescued
  // points.
  at::Tensor PointStddevs() const;

  GaussianMaskOptions options;
  at::Tensor points;       // [k, 2] (row, column)
  at::Tensor rescued_at;   // [k] int64 buffer: step of the last rescue, -1 none

 private:
  double stddev_start_, stddev_;
  int64_t step_ = 0, total_ = 0;
  detail::PointRescue rescue_;
  std::vector<int64_t> rescued_now_;  // by the last AfterStep()
};
TORCH_MODULE(GaussianMaskOperator);

}  // namespace diff_masks
}  // namespace indexgrad
