// Mask operators of Shekhar et al. 2023: learnable parameters -> a mask
// [H, W] in [0, 1] with about K pixels on. Every operator is a
// torch::nn::Module whose parameters() are what gradient descent trains.
//
//   GaussianMaskOperator op(GaussianMaskOptions(32, 32, /*k=*/512));
//   op->SetProgress(step, steps);          // schedules (stddev annealing)
//   at::Tensor loss = oracle.Mse(op->Mask());
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "diff_masks/mask_decoder.h"

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
};

// Row-major pixel indices [K] int64 of an image `width` wide -> [K, 2]
// (row, column): for operators whose indices are categorical over pixels.
at::Tensor PixelsOfFlat(const at::Tensor& flat, int64_t width);

// Method 2: K learnable 2-D points, each an isotropic Gaussian of standard
// deviation `stddev` in pixels (the paper's covariance (1/delta) I: delta =
// 1/stddev^2; the sparse layer's sigma, by contrast, is a variance), summed
// (gaussian_splat, cut-off disc) and clamped to [0, 1]. The clamp passes
// gradients straight through, so overlapping points (sum > 1) still feel
// the loss and spread out. stddev is annealed geometrically from
// stddev_start to stddev_end over the first anneal_fraction of training:
// wide Gaussians move points across the image, narrow ones place them on
// pixels. Two additions (measured on 32 x 32, README): points may leave the
// image by `margin` pixels, where surplus points hide (inside, they sat on
// background pixels or on the border; left half IoU 0.91 -> 1.00), and
// Gaussian noise of std `noise` pixels, decaying linearly to 0 at the end
// of the annealing, shakes points out of stationary spots.
struct GaussianMaskOptions {
  GaussianMaskOptions(int64_t height, int64_t width, int64_t k)
      : height_(height), width_(width), k_(k) {}
  TORCH_ARG(int64_t, height);
  TORCH_ARG(int64_t, width);
  TORCH_ARG(int64_t, k);
  TORCH_ARG(double, stddev_start) = 2.0;
  TORCH_ARG(double, stddev_end) = 0.5;
  TORCH_ARG(double, anneal_fraction) = 0.7;
  TORCH_ARG(double, tolerance) = 1e-6;  // gaussian_splat cut-off
  TORCH_ARG(double, margin) = 3.0;      // pixels a point may be outside
  TORCH_ARG(double, noise) = 0.1;       // initial noise std (pixels)
};

class GaussianMaskOperatorImpl : public MaskOperator {
 public:
  explicit GaussianMaskOperatorImpl(GaussianMaskOptions options);
  at::Tensor Mask() override;
  void SetProgress(int64_t step, int64_t total) override;
  double stddev() const { return stddev_; }
  double noise() const { return noise_; }
  at::Tensor Indices() override;  // the points rounded half up
  // Adds the current noise, then keeps the points within `margin` of the
  // image.
  void AfterStep() override;

  GaussianMaskOptions options;
  at::Tensor points;  // [k, 2] (row, column)

 private:
  double stddev_;
  double noise_;
};
TORCH_MODULE(GaussianMaskOperator);

// Method 1: a conv encoder (2 convolutions, each followed by 2x2 max
// pooling) and decoder (2 stride-2 transposed convolutions) map a fixed
// random input image to K logit channels over H x W; each channel picks one
// pixel by a hard Gumbel-softmax (one-hot forward, softmax gradient
// backward: straight-through); the K one-hot channels are summed and
// clamped to [0, 1] (clamp with a straight-through gradient). The network
// weights are what is learned. H and W must be multiples of 4.
struct GumbelMaskOptions {
  GumbelMaskOptions(int64_t height, int64_t width, int64_t k)
      : height_(height), width_(width), k_(k) {}
  TORCH_ARG(int64_t, height);
  TORCH_ARG(int64_t, width);
  TORCH_ARG(int64_t, k);
  TORCH_ARG(int64_t, channels) = 16;  // encoder width (then 2x)
  TORCH_ARG(double, temperature) = 0.5;
};

class GumbelMaskOperatorImpl : public MaskOperator {
 public:
  explicit GumbelMaskOperatorImpl(GumbelMaskOptions options);
  // A fresh Gumbel sample per call, also in evaluation (the noiseless
  // argmax collapses: measured IoU 0.05-0.07 on the 32 x 32 left half where
  // the sampled masks reach 0.6).
  at::Tensor Mask() override;
  at::Tensor Logits();  // [k, H * W]
  at::Tensor Indices() override;  // each channel's most likely pixel

  GumbelMaskOptions options;
  torch::nn::Sequential network{nullptr};
  at::Tensor input;  // [1, 1, H, W] fixed random image (buffer)
};
TORCH_MODULE(GumbelMaskOperator);

// Method 3: K learnable points in [0, 1]^2 rendered by a trained, frozen
// MaskDecoder (mask_decoder.h). The points are what is learned; the
// decoder stays in evaluation mode (BatchNorm running statistics) and its
// parameters do not require gradients. A well-trained decoder is sharp:
// its sigmoids saturate and a point's gradient vanishes (measured: IoU
// stuck at 0.37 on the 32 x 32 left half). So its logits are divided by a
// temperature annealed geometrically from temperature_start to
// temperature_end over the first anneal_fraction of training, as the
// Gaussian operator anneals stddev.
struct MlpMaskOptions {
  MlpMaskOptions(int64_t height, int64_t width, int64_t k)
      : height_(height), width_(width), k_(k) {}
  TORCH_ARG(int64_t, height);
  TORCH_ARG(int64_t, width);
  TORCH_ARG(int64_t, k);
  TORCH_ARG(double, temperature_start) = 4.0;
  TORCH_ARG(double, temperature_end) = 1.0;
  TORCH_ARG(double, anneal_fraction) = 0.5;
};

class MlpMaskOperatorImpl : public MaskOperator {
 public:
  MlpMaskOperatorImpl(MlpMaskOptions options, MaskDecoder decoder);
  at::Tensor Mask() override;
  void SetProgress(int64_t step, int64_t total) override;
  double temperature() const { return temperature_; }
  // The pixels the decoder was trained to draw for the points:
  // (round(r (H - 1)), round(c (W - 1))), as MasksOfCoordinates.
  at::Tensor Indices() override;
  // Keeps the points in [0, 1]^2.
  void AfterStep() override;
  // Switches only this operator; the decoder stays in evaluation mode.
  void train(bool on = true) override;

  MlpMaskOptions options;
  MaskDecoder decoder{nullptr};
  at::Tensor points;  // [k, 2] (row, column) in [0, 1]

 private:
  double temperature_;
};
TORCH_MODULE(MlpMaskOperator);

}  // namespace diff_masks
}  // namespace indexgrad
