#include "sparse_hyper/digit_window.h"

#include <vector>

namespace indexgrad {
namespace sparse_hyper {

at::Tensor DigitCrops(const at::Tensor& images, const at::Tensor& positions, int64_t size) {
  TORCH_CHECK(images.dim() == 4 && images.size(2) == images.size(3) && images.size(2) >= 28,
              "DigitCrops: images must be [N, C, S, S] with S >= 28, got ", images.sizes());
  TORCH_CHECK(positions.dim() == 2 && positions.size(1) == 2 && positions.size(0) == images.size(0),
              "DigitCrops: positions must be [N = ", images.size(0), ", 2], got ",
              positions.sizes());
  TORCH_CHECK(!at::isFloatingType(positions.scalar_type()),
              "DigitCrops: positions must be integers, got ", positions.scalar_type());
  TORCH_CHECK(size >= 1, "DigitCrops: size must be >= 1, got ", size);
  const int64_t side = images.size(2);
  const at::Tensor pos = positions.to(at::kCPU, at::kLong).contiguous();
  const auto a = pos.accessor<int64_t, 2>();
  // The windows' top-left corners, integers (positions are), shifted by the padding.
  const at::Tensor corners = (DigitWindowBoxes(pos, size) + double(size)).to(at::kLong);
  const auto c = corners.accessor<int64_t, 2>();
  // Padded by `size` on every side, so every crop lies inside.
  const at::Tensor padded = at::constant_pad_nd(images, {size, size, size, size}, 0);
  std::vector<at::Tensor> crops;
  crops.reserve(images.size(0));
  for (int64_t i = 0; i < images.size(0); ++i) {
    TORCH_CHECK(a[i][0] >= 0 && a[i][0] <= side - 28 && a[i][1] >= 0 && a[i][1] <= side - 28,
                "DigitCrops: positions must lie in [0, ", side - 28, "], got (", a[i][0], ", ",
                a[i][1], ") for image ", i);
    crops.push_back(padded[i].narrow(1, c[i][0], size).narrow(2, c[i][1], size));
  }
  return at::stack(crops);
}

at::Tensor DigitWindowBoxes(const at::Tensor& positions, int64_t size) {
  TORCH_CHECK(positions.dim() == 2 && positions.size(1) == 2,
              "DigitWindowBoxes: positions must be [N, 2], got ", positions.sizes());
  TORCH_CHECK(size >= 1, "DigitWindowBoxes: size must be >= 1, got ", size);
  const at::Tensor top_left = positions.to(at::kCPU, at::kDouble) + double(14 - size / 2);
  return at::cat({top_left, top_left + double(size - 1)}, 1);
}

at::Tensor DigitWindowRawBoxes(const at::Tensor& positions, int64_t size, int64_t side) {
  TORCH_CHECK(size >= 2 && side >= 28, "DigitWindowRawBoxes: size must be >= 2 and side >= 28, got ",
              size, " and ", side);
  const at::Tensor boxes = DigitWindowBoxes(positions, size).clamp(0.5, double(side) - 1.5);
  return at::logit(boxes / double(side - 1)).unsqueeze(1);
}

at::Tensor DigitCentreInBox(const at::Tensor& boxes, const at::Tensor& positions) {
  TORCH_CHECK(boxes.dim() == 3 && boxes.size(2) == 4,
              "DigitCentreInBox: boxes must be [N, g, 4], got ", boxes.sizes());
  TORCH_CHECK(positions.dim() == 2 && positions.size(1) == 2 && positions.size(0) == boxes.size(0),
              "DigitCentreInBox: positions must be [N = ", boxes.size(0), ", 2], got ",
              positions.sizes());
  const at::Tensor b = boxes.to(at::kDouble);
  const at::Tensor centre = (positions.to(at::kDouble) + 13.5).unsqueeze(1);  // [N, 1, 2]
  const at::Tensor lo = at::min(b.slice(2, 0, 2), b.slice(2, 2, 4));         // [N, g, 2]
  const at::Tensor hi = at::max(b.slice(2, 0, 2), b.slice(2, 2, 4));
  return ((centre >= lo) & (centre <= hi)).all(2).any(1);
}

}  // namespace sparse_hyper
}  // namespace indexgrad
