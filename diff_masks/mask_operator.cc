#include "diff_masks/mask_operator.h"

#include <ATen/ATen.h>

namespace indexgrad {
namespace diff_masks {

at::Tensor PixelsOfFlat(const at::Tensor& flat, int64_t width) {
  return at::stack({flat.div(width, "floor"), flat.remainder(width)}, 1);
}

}  // namespace diff_masks
}  // namespace indexgrad
