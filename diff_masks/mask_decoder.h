// The learned renderer of the MLP mask operator (Shekhar et al. 2023,
// method 3): an MLP that maps a point's coordinates and a standard
// deviation s to a distribution over the H x W pixels (softmax of H*W
// logits), trained to reproduce the point's Gaussian pixel masses at s
// (pixel_masses.h; s log-uniform in [min_stddev, max_stddev] during
// training, KL divergence). A mask of K points is the sum of their
// distributions, as the Gaussian operator sums pixel masses; at the small
// end of the range each point's distribution sits on the pixel it rounds
// to, at the wide end it spreads over a quarter of the image, so the MLP
// operator anneals s exactly as the Gaussian operator does and its points
// feel targets far away.
//
// A decoder of the point's own pixel only (sigmoid logits, the union of
// the K masks) is exact but flat away from the point, so points far from
// the target feel nothing; hence distributions at an annealed stddev.
//
// The reference concatenates all K coordinate pairs into one 2K-input MLP
// (2K -> 512 -> 3 x 512 -> H*W). That network has to be retrained for each
// K, is not invariant to the order of the points, and learns more slowly
// than a per-point network (docs/mask_recovery.md). The body is the
// same: a Linear + BatchNorm + PReLU block, then `blocks` more, then Linear
// to H*W logits. Its input is the coordinate pair, a fixed Fourier encoding
// of it in pixel units (periods 2, 4, ..., >= 2 max(H, W)), which turns
// "which pixel does this point round to" from a thousand-way split of the
// plane into a few sign tests, and log s and s / max(H, W).
//
//   MaskDecoder decoder(MaskDecoderOptions(32, 32));
//   TrainMaskDecoderStep(*decoder, adam, /*batch=*/256);   // repeat
//   at::Tensor m = decoder->Render(coords, /*stddev=*/0.15);  // [B, K, 2] -> [B, H, W]
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace indexgrad {
namespace diff_masks {

struct MaskDecoderOptions {
  MaskDecoderOptions(int64_t height, int64_t width)
      : height_(height), width_(width) {}
  TORCH_ARG(int64_t, height);
  TORCH_ARG(int64_t, width);
  TORCH_ARG(int64_t, hidden) = 256;  // width of every block
  TORCH_ARG(int64_t, blocks) = 3;    // blocks after the first
  // Fourier periods 2^1 .. 2^f per axis; -1: enough to cover the image.
  TORCH_ARG(int64_t, frequencies) = -1;
  // The range of standard deviations (pixels) it renders; max 0: a
  // quarter of max(H, W).
  TORCH_ARG(double, min_stddev) = 0.15;
  TORCH_ARG(double, max_stddev) = 0;
};

class MaskDecoderImpl : public torch::nn::Module {
 public:
  explicit MaskDecoderImpl(MaskDecoderOptions options);

  // coords [N, 2] (row, column) in [0, 1], stddevs [N] (pixels) -> [N, F]
  // network input.
  at::Tensor Encode(const at::Tensor& coords, const at::Tensor& stddevs) const;
  // -> [N, H * W] logits of each point's pixel distribution.
  at::Tensor PointLogits(const at::Tensor& coords, const at::Tensor& stddevs);
  // coords [B, K, 2] -> [B, H, W] >= 0: the sum of the K points' pixel
  // distributions at `stddev` (within [min_stddev, max_stddev]).
  at::Tensor Render(const at::Tensor& coords, double stddev);

  int64_t frequencies() const { return frequencies_; }
  double max_stddev() const { return max_stddev_; }  // resolved

  MaskDecoderOptions options;
  torch::nn::Sequential network{nullptr};

 private:
  int64_t frequencies_;
  double max_stddev_;
};
TORCH_MODULE(MaskDecoder);

// The mask a set of coordinates stands for: pixel (round(r (H - 1)),
// round(c (W - 1))) on for every point. coords [B, K, 2] -> [B, H, W] {0, 1}.
at::Tensor MasksOfCoordinates(const at::Tensor& coords, int64_t height,
                              int64_t width);

// One training step on `batch` uniform random single points, each with a
// stddev log-uniform in [min_stddev, max_stddev]: KL divergence from the
// point's pixel masses (PointPixelMasses) to its softmax, averaged over the
// batch. Uses the global generator (seed it). Returns the loss.
double TrainMaskDecoderStep(MaskDecoderImpl& decoder, torch::optim::Optimizer& optimizer,
                            int64_t batch);

// At min_stddev, in evaluation mode, on `masks` random sets of k points:
// mean IoU of the rendered mask (thresholded at 0.5) with
// MasksOfCoordinates, and the share of points whose most likely pixel is
// their own.
struct MaskDecoderScores {
  double iou = 0;
  double pixel_accuracy = 0;
};
MaskDecoderScores EvaluateMaskDecoder(MaskDecoderImpl& decoder, int64_t k,
                                      int64_t masks, uint64_t seed);

// A decoder file holds its options, then the parameters and buffers.
// Loading checks the options against `expected` and names any mismatch.
absl::Status SaveMaskDecoder(MaskDecoderImpl& decoder, const std::string& path);
absl::StatusOr<MaskDecoder> LoadMaskDecoder(const std::string& path,
                                            const MaskDecoderOptions& expected);

}  // namespace diff_masks
}  // namespace indexgrad
