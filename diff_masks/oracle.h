// The recovery task of Shekhar et al. 2023, section 3: a hidden target mask
// M* over an H x W image and an oracle that, given a candidate mask M in
// [0, 1]^(H x W), returns only MSE(M, M*). The learner is told the image size
// and how many pixels are on (K); the target itself is private.
//
//   absl::StatusOr<MaskOracle> oracle =
//       MaskOracle::Create(TargetKind::kLeftHalf, 32, 32, /*seed=*/0);
//   at::Tensor loss = oracle->Mse(op->Mask());   // differentiable in the mask
//   MaskScores s = oracle->Score(op->Mask());   // evaluation, not for learning
//
// A user's mask: MaskOracle::FromMask(tensor), or from an image file with
// LoadMaskImage (mask_image.h).
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "absl/status/statusor.h"

namespace indexgrad {
namespace diff_masks {

enum class TargetKind {
  kLeftHalf,      // the reference code's target: columns [0, W/2)
  kRandomPixels,  // K pixels uniformly at random (K = num_pixels)
  kDisc,          // a centred disc of radius min(H, W) / 4
  kDigit,         // the support (> 0.5) of an MNIST digit, centred
};

absl::StatusOr<TargetKind> ParseTargetKind(const std::string& name);
std::string TargetKindName(TargetKind kind);

struct MaskScores {
  double iou = 0;       // intersection over union of (M > 0.5) and M*
  double accuracy = 0;  // fraction of pixels where (M > 0.5) == M*
};

class MaskOracle {
 public:
  // num_pixels: K for kRandomPixels (ignored otherwise). digit: a [28, 28]
  // image in [0, 1] for kDigit (H, W >= 28).
  static absl::StatusOr<MaskOracle> Create(TargetKind kind, int64_t height,
                                           int64_t width, int64_t seed,
                                           int64_t num_pixels = 0,
                                           const at::Tensor& digit = {});
  // A user's target: mask [H, W] (H, W >= 2) of any real or integer dtype
  // with every value 0 or 1 and at least one 1; errors name `what` (say,
  // the file it came from) and the offending value or shape.
  static absl::StatusOr<MaskOracle> FromMask(const at::Tensor& mask,
                                             const std::string& what = "mask");

  // MSE between mask [H, W] and the hidden target; a scalar differentiable
  // in `mask`. Checks shape and NaN.
  at::Tensor Mse(const at::Tensor& mask) const;
  // Evaluation of mask [H, W] thresholded at 0.5.
  MaskScores Score(const at::Tensor& mask) const;
  // IoU of the set of pixels [K, 2] int64 (row, column; repeats count once,
  // pixels outside the image are ignored) with the target.
  double IndexIoU(const at::Tensor& pixels) const;

  int64_t height() const { return height_; }
  int64_t width() const { return width_; }
  int64_t target_pixels() const { return target_pixels_; }

 private:
  MaskOracle(at::Tensor target, int64_t target_pixels)
      : target_(std::move(target)),
        height_(target_.size(0)),
        width_(target_.size(1)),
        target_pixels_(target_pixels) {}
  void CheckMask(const char* method, const at::Tensor& mask) const;
  friend at::Tensor TargetForFigures(const MaskOracle& oracle);

  at::Tensor target_;  // [H, W] float {0, 1}: never handed out
  int64_t height_, width_, target_pixels_;
};

// The hidden target, for figures and reports of an experiment harness only:
// learners must not call it (nothing in diff_masks does).
at::Tensor TargetForFigures(const MaskOracle& oracle);

}  // namespace diff_masks
}  // namespace indexgrad
