// Schema, dispatcher entries and shared checks of gaussian_splat.
#include "kernels/gaussian_splat/gaussian_splat.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <cmath>

#include "kernels/common/checks.h"

namespace indexgrad {

at::Tensor gaussian_splat(const at::Tensor& points, double stddev,
                          int64_t height, int64_t width, double tolerance) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("indexgrad::gaussian_splat", "")
                       .typed<decltype(gaussian_splat)>();
  return op.call(points, stddev, height, width, tolerance);
}

namespace detail {

at::Tensor _gaussian_splat_backward(const at::Tensor& grad,
                                    const at::Tensor& points, double stddev,
                                    int64_t height, int64_t width,
                                    double tolerance) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("indexgrad::_gaussian_splat_backward", "")
          .typed<decltype(_gaussian_splat_backward)>();
  return op.call(grad, points, stddev, height, width, tolerance);
}

void check_gaussian_splat_args(const char* op, const at::Tensor& points,
                               double stddev, int64_t height, int64_t width,
                               double tolerance) {
  check_dim(op, "points", points, 3);
  check_floating(op, "points", points);
  TORCH_CHECK(points.size(2) == 2, op,
              ": points must be [batch, k, 2] (row, column), got ",
              shape_string(points.sizes()));
  TORCH_CHECK(std::isfinite(stddev) && stddev > 0, op,
              ": stddev must be a positive finite number, got ", stddev);
  TORCH_CHECK(height >= 1 && width >= 1, op,
              ": height and width must be positive, got ", height, " x ",
              width);
  TORCH_CHECK(std::isfinite(tolerance) && tolerance >= 0 && tolerance < 1, op,
              ": tolerance must be in [0, 1) (0 = dense), got ", tolerance);
  if (points.numel() > 0) {
    TORCH_CHECK(at::isfinite(points).all().item<bool>(), op,
                ": points contain NaN or infinity");
  }
}

void check_gaussian_splat_grad(const char* op, const at::Tensor& grad,
                               const at::Tensor& points, int64_t height, int64_t width) {
  const int64_t batch = points.size(0);
  TORCH_CHECK(grad.dim() == 3 && grad.size(0) == batch &&
                  grad.size(1) == height && grad.size(2) == width,
              op, ": grad must be [", batch, ", ", height, ", ", width,
              "], got ", grad.sizes());
  TORCH_CHECK(grad.scalar_type() == points.scalar_type(), op,
              ": grad must have the dtype of points, got ", grad.scalar_type());
  check_same_device(op, "points", points, "grad", grad);
}

}  // namespace detail
}  // namespace indexgrad

TORCH_LIBRARY_FRAGMENT(indexgrad, m) {
  m.def(
      "gaussian_splat(Tensor points, float stddev, int height, int width, "
      "float tolerance) -> Tensor");
  m.def(
      "_gaussian_splat_backward(Tensor grad, Tensor points, float stddev, "
      "int height, int width, float tolerance) -> Tensor");
}
