// The learned renderer of the MLP mask operator (Shekhar et al. 2023,
// method 3): an MLP that maps a point's coordinates to the H x W mask of
// the pixel it rounds to. A mask of K points is the union of their masks,
//   m_p = 1 - prod_k (1 - sigmoid(l_kp))   (computed in log space),
// so one decoder per image size serves every K and every target.
//
// The reference concatenates all K coordinate pairs into one 2K-input MLP
// (2K -> 512 -> 3 x 512 -> H*W). That network has to be retrained for each
// K, is not invariant to the order of the points, and learns slowly: in a
// Python prototype at 8 x 8 with K = 4 it reached IoU 0.24 after 1,000
// steps where a per-point network reached 0.78 (README). The body is the same: a Linear
// + BatchNorm + PReLU block, then `blocks` more, then Linear to H*W logits.
// Its input is the coordinate pair plus a fixed Fourier encoding of it in
// pixel units (periods 2, 4, ..., >= 2 max(H, W)), which turns "which
// pixel does this point round to" from a thousand-way split of the plane
// into a few sign tests.
//
//   MaskDecoder decoder(MaskDecoderOptions(32, 32));
//   TrainMaskDecoderStep(*decoder, adam, /*batch=*/256);   // repeat
//   at::Tensor m = decoder->Render(coords);  // [B, K, 2] in [0, 1] -> [B, H, W]
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
};

class MaskDecoderImpl : public torch::nn::Module {
 public:
  explicit MaskDecoderImpl(MaskDecoderOptions options);

  // coords [N, 2] (row, column) in [0, 1] -> [N, F] network input.
  at::Tensor Encode(const at::Tensor& coords) const;
  // coords [N, 2] -> [N, H * W] logits of each point's own mask.
  at::Tensor PointLogits(const at::Tensor& coords);
  // coords [B, K, 2] -> [B, H, W] in [0, 1]: union of the K point masks,
  // each sigmoid(logits / temperature) (temperature > 1 softens them).
  at::Tensor Render(const at::Tensor& coords, double temperature = 1.0);

  int64_t frequencies() const { return frequencies_; }

  MaskDecoderOptions options;
  torch::nn::Sequential network{nullptr};

 private:
  int64_t frequencies_;
};
TORCH_MODULE(MaskDecoder);

// The mask a set of coordinates stands for: pixel (round(r (H - 1)),
// round(c (W - 1))) on for every point. coords [B, K, 2] -> [B, H, W] {0, 1}.
at::Tensor MasksOfCoordinates(const at::Tensor& coords, int64_t height,
                              int64_t width);

// One training step on `batch` uniform random single points: binary
// cross-entropy of each point's logits against its 0/1 mask, summed over
// pixels, averaged over the batch. Uses the global generator (seed it).
// Returns the loss. (Tried and dropped: regressing the logits far from the
// point onto a distance-shaped field, to give recovery a direction there;
// the network then lost the sharp peak on the point's own pixel, pixel
// accuracy 0.61 against 0.99.)
double TrainMaskDecoderStep(MaskDecoderImpl& decoder, torch::optim::Optimizer& optimizer,
                            int64_t batch);

// Mean IoU (mask thresholded at 0.5) and exact-pixel accuracy of the
// decoder on `masks` random sets of k points each, in evaluation mode.
struct MaskDecoderScores {
  double iou = 0;
  double pixel_accuracy = 0;  // share of points whose argmax is their pixel
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
