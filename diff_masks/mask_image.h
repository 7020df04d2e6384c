// Reads a user's binary mask from an image file (PNG, PGM/PPM, BMP, JPEG,
// ... whatever stb_image reads; Debian's libstb-dev): converted to
// grey and thresholded at half its range (8-bit: >= 128 is on; 16-bit:
// >= 32768; 16-bit PGM read right whichever way the installed stb orders
// its bytes). Errors name the file and what is wrong with it.
//
//   absl::StatusOr<at::Tensor> mask = LoadMaskImage("target.png");
//   absl::StatusOr<MaskOracle> oracle = MaskOracle::FromMask(*mask, "target.png");
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "absl/status/statusor.h"

namespace indexgrad {
namespace diff_masks {

// [H, W] float {0, 1}.
absl::StatusOr<at::Tensor> LoadMaskImage(const std::string& path);

}  // namespace diff_masks
}  // namespace indexgrad
