// The learned-MLP mask operator (Shekhar et al. 2023, method 3).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <vector>

#include "diff_masks/mask_decoder.h"
#include "diff_masks/mask_operator.h"
#include "diff_masks/point_rescue.h"

namespace indexgrad {
namespace diff_masks {

// Method 3: K learnable points in [0, 1]^2 rendered by a trained, frozen
// MaskDecoder (mask_decoder.h): the sum of the points' learned pixel
// distributions at a standard deviation annealed geometrically from
// stddev_start to stddev_end over the first anneal_fraction of training,
// as the Gaussian operator anneals its own (0: the decoder's trained
// maximum / minimum), and with the Gaussian operator's rescue of stuck
// points (each rescued point decoded at its own stddev). The points are
// what is learned; the decoder stays in evaluation mode (BatchNorm running
// statistics) and its parameters do not require gradients.
struct MlpMaskOptions {
  MlpMaskOptions(int64_t height, int64_t width, int64_t k)
      : height_(height), width_(width), k_(k) {}
  TORCH_ARG(int64_t, height);
  TORCH_ARG(int64_t, width);
  TORCH_ARG(int64_t, k);
  TORCH_ARG(double, stddev_start) = 0;
  TORCH_ARG(double, stddev_end) = 0;
  TORCH_ARG(double, anneal_fraction) = 0.4;
  // Rescue of stuck points, as GaussianMaskOptions (rescue_stddev 0: the
  // starting stddev; a point's share of its fullest pixel is read from its
  // decoded distribution). Train with RestartMoments after AfterStep().
  TORCH_ARG(int64_t, rescue_every) = 25;
  TORCH_ARG(double, rescue_stddev) = 0;
  TORCH_ARG(int64_t, rescue_steps) = 100;
  TORCH_ARG(double, rescue_peak) = 0.5;
  // AdamEpsilon(), as GaussianMaskOptions::adam_eps.
  TORCH_ARG(double, adam_eps) = 1e-16;
};

class MlpMaskOperatorImpl : public MaskOperator {
 public:
  MlpMaskOperatorImpl(MlpMaskOptions options, MaskDecoder decoder);
  at::Tensor Mask() override;
  void SetProgress(int64_t step, int64_t total) override;
  double AdamEpsilon() const override { return options.adam_eps(); }
  double stddev() const { return stddev_; }
  // The pixels the points round to: (round(r (H - 1)), round(c (W - 1))),
  // as MasksOfCoordinates.
  at::Tensor Indices() override;
  // Keeps the points in [0, 1]^2; rescues.
  void AfterStep() override;
  std::vector<Rows> RestartedRows() override;
  // Switches only this operator; the decoder stays in evaluation mode.
  void train(bool on = true) override;
  // The points' own stddevs now: [k], the global one except for rescued
  // points.
  at::Tensor PointStddevs() const;

  MlpMaskOptions options;
  MaskDecoder decoder{nullptr};
  at::Tensor points;      // [k, 2] (row, column) in [0, 1]
  at::Tensor rescued_at;  // [k] int64 buffer: step of the last rescue, -1 none

 private:
  // [k, H * W]: each point's pixel distribution at its own stddev.
  at::Tensor PointDistributions(const at::Tensor& stddevs);

  double stddev_start_, stddev_end_, stddev_;
  int64_t step_ = 0, total_ = 0;
  detail::PointRescue rescue_;
  std::vector<int64_t> rescued_now_;  // by the last AfterStep()
};
TORCH_MODULE(MlpMaskOperator);

}  // namespace diff_masks
}  // namespace indexgrad
