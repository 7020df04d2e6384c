// Sparse-hyperlayer glimpses (Bloem et al. 2018, section 3.2): each glimpse
// is a templated sparse layer W of shape (c, k, k, c, h, w) in which every
// dimension but the input's h and w is fixed, so each output pixel (c, i, j)
// has one continuous input position (y, x), learned. A box (y0, x0, y1, x1)
// per glimpse, from a source network, places k x k equally spaced positions:
//   y_i = y0 + (y1 - y0) i / (k - 1),  x_j = x0 + (x1 - x0) j / (k - 1)
// with the corners sigmoid(raw) * (size - 1) (the box may flip: y1 < y0).
// Around each position integer points are sampled (its 4 neighbours,
// num_local in a `region` box, num_global anywhere) and the glimpse pixel is
// sum_j p'_j x[c, point_j], p' the paper's normalised Gaussian proportions
// (variance per glimpse, learned) times the glimpse's value (learned,
// shared by all its pixels).
//
// The 6-tensor's fixed dimensions make points of different output pixels
// distinct and give them zero density under each other's tuple, so the
// paper's normalisation over all sampled points of W is exactly each
// tuple's own normalisation (spread_values with chunk_size 1), and the
// product is a gather: linear in batch x glimpse pixels x samples, never in
// h x w. glimpse_test checks this against the generic templated product
// (SampledSparseProduct with fixed dimensions).
//
//   GlimpseLayer g(GlimpseOptions().glimpses(8).size(12));
//   at::Tensor out = g->forward(images, raw_boxes);  // [B,C,H,W], [B,8,4] -> [B,8,C,12,12]
//
// Evaluation mode (g->eval()) averages eval_samples (default 1) draws of
// the training estimator, seeded apart from training's (every evaluation
// the same, the training seeds untouched): the glimpse the classifier
// learned from. The variance does not shrink in this task (the paper's
// parametrisation stays near 20 px^2, a 4.5 px blur), so reading pixels at
// their rounded positions, as the sparse layers do (eval_samples 0), shows
// the classifier sharp glimpses it never saw: a paper-preset sparse1
// checkpoint (14 epochs) had 25.2 % test error that way, 13.65 % with one
// draw and 13.4 % with the mean of 8 (2,000 test images); each draw added
// about 5 s to the 14 s that evaluation took at rounded positions.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <vector>

namespace indexgrad {
namespace sparse_hyper {

struct GlimpseOptions {
  TORCH_ARG(int64_t, glimpses) = 1;
  TORCH_ARG(int64_t, size) = 32;  // k: a glimpse is k x k
  TORCH_ARG(int64_t, num_global) = 16;
  TORCH_ARG(int64_t, num_local) = 32;
  TORCH_ARG(std::vector<int64_t>, region) = std::vector<int64_t>{20, 20};
  // variance = softplus(raw + 2) * (h, w) * variance_scale + min_variance
  TORCH_ARG(double, variance_scale) = 0.1;
  TORCH_ARG(double, min_variance) = 0.1;
  TORCH_ARG(double, tolerance) = 1e-6;
  TORCH_ARG(int64_t, seed) = 0;
  // Evaluation mode: the mean of this many sampled glimpses; 0: each pixel
  // at its rounded position.
  TORCH_ARG(int64_t, eval_samples) = 1;
};

// raw [B, g, 4] (y0, x0, y1, x1 before the sigmoid) -> the boxes' corners
// in pixels [B, g, 4]: sigmoid(raw) * (size - 1).
at::Tensor GlimpseBoxes(const at::Tensor& raw_boxes, int64_t height, int64_t width);

// raw [B, g, 4], image height and width -> positions [B, g * k * k, 2] (y, x), row-major within a glimpse.
at::Tensor GlimpsePositions(const at::Tensor& raw_boxes, int64_t k, int64_t height,
                            int64_t width);

// The sampled product for given positions [B, K, 2], variances [B, K, 2]
// and values [B, K]: image [B, C, H, W] -> [B, C, K]. Differentiable in
// positions, variances, values and image.
at::Tensor SampledGather(const at::Tensor& image, const at::Tensor& positions,
                         const at::Tensor& variances, const at::Tensor& values,
                         const GlimpseOptions& options, int64_t seed);

class GlimpseLayerImpl : public torch::nn::Module {
 public:
  explicit GlimpseLayerImpl(GlimpseOptions options = {});

  // image [B, C, H, W], raw_boxes [B, glimpses, 4] -> [B, glimpses, C, k, k]
  at::Tensor forward(const at::Tensor& image, const at::Tensor& raw_boxes);

  GlimpseOptions options;
  at::Tensor raw_variance;  // [g] parameter
  at::Tensor value;         // [g] parameter, starts at 1
  at::Tensor step;          // [] int64 buffer (sampling seed)
};
TORCH_MODULE(GlimpseLayer);

}  // namespace sparse_hyper
}  // namespace indexgrad
