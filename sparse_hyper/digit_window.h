// The window around a cluttered MNIST digit at its recorded position: the
// oracle's crop (DigitCrops), its corners as boxes (DigitWindowBoxes,
// DigitWindowRawBoxes for a GlimpseLayer), and whether a model's boxes hold
// the digit's centre (DigitCentreInBox). Positions are the 28 x 28 digit's
// top-left corners, integer [N, 2] (row, column), as datasets/
// cluttered_mnist.h records them.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace indexgrad {
namespace sparse_hyper {

// Crops [N, C, size, size] of images [N, C, S, S] centred on each digit: the
// 28 x 28 digit's top-left is positions[i] (integer [N, 2], row, column, in
// [0, S - 28]); crop i's rows start at positions[i][0] + 14 - size / 2 (and
// its columns likewise), zeros outside the image. The oracle's input.
at::Tensor DigitCrops(const at::Tensor& images, const at::Tensor& positions, int64_t size);

// The size x size window DigitCrops cuts around each digit, as boxes [N, 4]
// double (y0, x0, y1, x1 in pixels): (row, column) + 14 - size / 2, and
// + size - 1 for the far corner; not clipped to the image.
at::Tensor DigitWindowBoxes(const at::Tensor& positions, int64_t size);

// The raw box values (before sparse_hyper::GlimpseBoxes' sigmoid) of the
// size x size window DigitCrops cuts, [N, 1, 4] double: its corners (y0, x0,
// y1, x1) = (row, column) + 14 - size / 2 and + size - 1, each kept in
// [0.5, side - 1.5] (the sigmoid's range is open), so a window past an
// edge is squeezed in. The sampled oracle's box.
at::Tensor DigitWindowRawBoxes(const at::Tensor& positions, int64_t size, int64_t side);

// Whether the digit centre, position + 13.5 px (the 28 x 28 digit's top-left
// [N, 2] (row, column)), lies in at least one of the boxes [N, g, 4] (y0, x0,
// y1, x1 in pixels, corners in either order, edges included): bool [N].
at::Tensor DigitCentreInBox(const at::Tensor& boxes, const at::Tensor& positions);

}  // namespace sparse_hyper
}  // namespace indexgrad
