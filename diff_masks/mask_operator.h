// Mask operators of Shekhar et al. 2023: learnable parameters -> a mask
// [H, W] with about K pixels on (in [0, 1]; the Gaussian operator's reads
// k where k of its points share a pixel). Every operator is a
// torch::nn::Module whose parameters() are what gradient descent trains.
//
//   GaussianMaskOperator op(GaussianMaskOptions(32, 32, /*k=*/512));
//   op->SetProgress(step, steps);          // schedules (stddev annealing)
//   at::Tensor loss = oracle.Mse(op->Mask());
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <vector>

#include "diff_masks/mask_decoder.h"
#include "diff_masks/pixel_masses.h"

namespace indexgrad {
namespace diff_masks {

class MaskOperator : public torch::nn::Module {
 public:
  // [H, W] in [0, 1].
  virtual at::Tensor Mask() = 0;
  // Training progress in [0, 1] for operators with schedules.
  virtual void SetProgress(int64_t step, int64_t total) {
    (void)step;
    (void)total;
  }
  // Called after each optimiser step (projections, perturbations).
  virtual void AfterStep() {}
  // What gradient descent minimises given the oracle's MSE of the last
  // Mask(): the MSE itself for operators differentiable in their mask;
  // score-function operators (baselines::ReinforceMaskOperator) return
  // their surrogate.
  virtual at::Tensor Objective(const at::Tensor& mse) { return mse; }
  // The pixels the operator's K indices stand for now, [K, 2] int64 (row,
  // column), possibly outside the image or repeated: what it has learned,
  // as opposed to its rendered mask (MaskOracle::IndexIoU scores them).
  virtual at::Tensor Indices() = 0;
  // Rows of parameters that the last AfterStep() put into another regime
  // (the Gaussian operator's rescued points), whose optimiser moments no
  // longer fit them: RestartMoments clears them.
  struct Rows {
    at::Tensor parameter;
    at::Tensor rows;  // [n] int64 indices into parameter's first dimension
  };
  virtual std::vector<Rows> RestartedRows() { return {}; }
};

// Call after op.AfterStep() with the optimiser training op: zeroes the
// moments (Adam's first and second, AdamW's, SGD's momentum buffer) of
// op.RestartedRows(), so that each such row's next steps are scaled by its
// own new gradients rather than by the memory of old ones (Adam's second
// moment forgets over about 1 / (1 - beta2) = 1,000 steps). Rows without
// optimiser state yet are left alone; an optimiser of another kind is an
// error naming it.
void RestartMoments(MaskOperator& op, torch::optim::Optimizer& optimizer);

// The optimiser's state of `parameter`, nullptr before its first step.
// (LibTorch keys the state by the parameter's TensorImpl address, as a
// string up to 2.0 and as a pointer since; this works with both.)
torch::optim::OptimizerParamState* FindOptimizerState(torch::optim::Optimizer& optimizer,
                                                      const at::Tensor& parameter);

// Row-major pixel indices [K] int64 of an image `width` wide -> [K, 2]
// (row, column): for operators whose indices are categorical over pixels.
at::Tensor PixelsOfFlat(const at::Tensor& flat, int64_t width);

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
}  // namespace detail

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
// Indices() (the points rounded) is what the mask shows. Measured on the
// 32 x 32 left half (README): index IoU 0.58 with the peak-1 Gaussians,
// clamped sum and noise this replaced, 0.998 with pixel masses.
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
  // And give Adam an epsilon far below those gradients (mask_recovery:
  // 1e-16): the MSE's mean over H x W pixels makes a wide point's gradient
  // about 1e-9 at 128 x 128, which Adam's usual 1e-8 turns into no step;
  // on larger images let the learning rate fall with the stddev to about
  // 0.1 px (mask_recovery --lr_end), or narrow points jump between pixels.
  // 32 x 32, 2,000 steps (README): index IoU on 256 random pixels
  // 0.875-0.883 without rescue, 0.942-0.957 rescuing doubled points at 2 px
  // every 50 steps without restarting the moments, 1.000 on 8 seeds with
  // fresh moments; with these defaults and mask_recovery's optimiser
  // 0.99-1.00 on every built-in target at 32, 64 and 128.
  TORCH_ARG(int64_t, rescue_every) = 25;
  TORCH_ARG(double, rescue_stddev) = 0;
  TORCH_ARG(int64_t, rescue_steps) = 100;
  TORCH_ARG(double, rescue_peak) = 0.5;
};

class GaussianMaskOperatorImpl : public MaskOperator {
 public:
  explicit GaussianMaskOperatorImpl(GaussianMaskOptions options);
  // [H, W] >= 0: about 1 on pixels holding a point, k on pixels holding k.
  at::Tensor Mask() override;
  void SetProgress(int64_t step, int64_t total) override;
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

// Method 1: K channels, each a categorical over the H x W pixels picked by
// a hard Gumbel-softmax (one-hot forward, softmax gradient backward:
// straight-through); the K one-hot channels are summed, and, with `clamp`,
// clamped to [0, 1] (straight-through). Unclamped, two channels on one
// pixel read 2, which the MSE pushes apart. The logits are either
//   network = true   the paper's: a conv encoder (2 convolutions, each
//                    followed by 2x2 max pooling) and decoder (2 stride-2
//                    transposed convolutions) map a fixed random input
//                    image to K logit channels (H and W multiples of 4);
//                    the network weights are learned;
//   network = false  a learned [K, H * W] table (the REINFORCE baseline's
//                    parametrisation, with a reparametrised gradient).
// The Gumbel noise is scaled by a factor annealed linearly from 1 to 0 over
// the first noise_fraction of training: a random search first, then the
// forward pass is the logits' argmax, the operator's Indices(). Measured at
// 32 x 32 (README): the table, unclamped, reaches index IoU 0.9-1.0 on
// every target; the network 0.10-0.46 clamped (the factory's gumbel_net),
// and unclamped its channels collapse onto few pixels on large targets
// (left half 0.02-0.04).
struct GumbelMaskOptions {
  GumbelMaskOptions(int64_t height, int64_t width, int64_t k)
      : height_(height), width_(width), k_(k) {}
  TORCH_ARG(int64_t, height);
  TORCH_ARG(int64_t, width);
  TORCH_ARG(int64_t, k);
  TORCH_ARG(bool, network) = false;
  TORCH_ARG(int64_t, channels) = 16;  // network: encoder width (then 2x)
  TORCH_ARG(double, temperature) = 0.5;
  TORCH_ARG(double, noise_fraction) = 0.8;
  TORCH_ARG(bool, clamp) = false;
  // The table only (network = false). Once the noise has faded, a channel
  // whose pixel the loss wants dimmer (a background pixel, or one another
  // channel holds too) takes the mask's gradient itself as its logits'
  // gradient (the identity straight-through estimator), the others keep the
  // softmax's (GumbelEndgameSum); and the logits' optimiser moments restart
  // once (RestartedRows, at the first step without noise). The softmax
  // gradient reaches a pixel in proportion to its probability, so a channel
  // parked on background, its logits at the empty target pixels some 8
  // below its own, never moved there (README: the digit ended 1-2 pixels
  // short). mask_recovery then starts the logits' learning rate on a new
  // cosine from --gumbel_endgame_lr to 0 (first_quiet_step() on).
  TORCH_ARG(bool, endgame) = false;
};

class GumbelMaskOperatorImpl : public MaskOperator {
 public:
  explicit GumbelMaskOperatorImpl(GumbelMaskOptions options);
  // A fresh Gumbel sample per call (scaled by noise_scale()).
  at::Tensor Mask() override;
  void SetProgress(int64_t step, int64_t total) override;
  std::vector<Rows> RestartedRows() override;  // endgame: every row, once
  double noise_scale() const { return noise_scale_; }
  // The first step of `total` without noise: ceil(noise_fraction * total).
  int64_t first_quiet_step(int64_t total) const;
  at::Tensor Logits();  // [k, H * W]
  at::Tensor Indices() override;  // each channel's most likely pixel

  GumbelMaskOptions options;
  torch::nn::Sequential network{nullptr};  // network = true
  at::Tensor input;   // network = true: [1, 1, H, W] fixed random image (buffer)
  at::Tensor logits;  // network = false: [k, H * W] (parameter)

 private:
  double noise_scale_ = 1.0;
  bool endgame_begins_ = false;  // at the step SetProgress was last given
};
TORCH_MODULE(GumbelMaskOperator);

// The Gumbel table's endgame sum (GumbelMaskOptions::endgame): logits [k, P]
// -> [P], the number of channels whose argmax is each pixel; backward: the
// output's gradient g itself for each channel with g > 0 at its pixel, the
// softmax(logits / temperature) straight-through gradient for the others.
at::Tensor GumbelEndgameSum(const at::Tensor& logits, double temperature);

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
  // 32 x 32, 2,000 steps, 3 seeds (README): index IoU 0.875-0.986 on the
  // built-in targets without, 0.994-1.000 with.
  TORCH_ARG(int64_t, rescue_every) = 25;
  TORCH_ARG(double, rescue_stddev) = 0;
  TORCH_ARG(int64_t, rescue_steps) = 100;
  TORCH_ARG(double, rescue_peak) = 0.5;
};

class MlpMaskOperatorImpl : public MaskOperator {
 public:
  MlpMaskOperatorImpl(MlpMaskOptions options, MaskDecoder decoder);
  at::Tensor Mask() override;
  void SetProgress(int64_t step, int64_t total) override;
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
