// Autograd for gaussian_splat: the gradient w.r.t. points comes from
// `_gaussian_splat_backward`.
#include <torch/autograd.h>
#include <torch/library.h>

#include "kernels/gaussian_splat/gaussian_splat.h"

namespace indexgrad {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Variable;
using torch::autograd::variable_list;

class GaussianSplatFunction
    : public torch::autograd::Function<GaussianSplatFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const Variable& points,
                               double stddev, int64_t height, int64_t width,
                               double tolerance) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor mask = gaussian_splat(points, stddev, height, width, tolerance);
    ctx->save_for_backward({points});
    ctx->saved_data["stddev"] = stddev;
    ctx->saved_data["height"] = height;
    ctx->saved_data["width"] = width;
    ctx->saved_data["tolerance"] = tolerance;
    return {mask};
  }

  static variable_list backward(AutogradContext* ctx,
                                const variable_list& grad_output) {
    const auto saved = ctx->get_saved_variables();
    at::Tensor g = detail::_gaussian_splat_backward(
        grad_output[0], saved[0], ctx->saved_data["stddev"].toDouble(),
        ctx->saved_data["height"].toInt(), ctx->saved_data["width"].toInt(),
        ctx->saved_data["tolerance"].toDouble());
    return {g, Variable(), Variable(), Variable(), Variable()};
  }
};

class GaussianSplatBackwardFunction
    : public torch::autograd::Function<GaussianSplatBackwardFunction> {
 public:
  static variable_list forward(AutogradContext*, const Variable& grad,
                               const Variable& points, double stddev,
                               int64_t height, int64_t width,
                               double tolerance) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return {detail::_gaussian_splat_backward(grad, points, stddev, height,
                                             width, tolerance)};
  }

  static variable_list backward(AutogradContext*, const variable_list&) {
    TORCH_CHECK(false,
                "_gaussian_splat_backward: double backward is not supported");
  }
};

at::Tensor gaussian_splat_autograd(const at::Tensor& points, double stddev,
                                   int64_t height, int64_t width,
                                   double tolerance) {
  return GaussianSplatFunction::apply(points, stddev, height, width,
                                      tolerance)[0];
}

at::Tensor gaussian_splat_backward_autograd(const at::Tensor& grad,
                                            const at::Tensor& points,
                                            double stddev, int64_t height,
                                            int64_t width, double tolerance) {
  return GaussianSplatBackwardFunction::apply(grad, points, stddev, height,
                                              width, tolerance)[0];
}

}  // namespace

TORCH_LIBRARY_IMPL(indexgrad, Autograd, m) {
  m.impl("gaussian_splat", TORCH_FN(gaussian_splat_autograd));
  m.impl("_gaussian_splat_backward",
         TORCH_FN(gaussian_splat_backward_autograd));
}

}  // namespace indexgrad
