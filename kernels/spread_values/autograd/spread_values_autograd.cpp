// Autograd for spread_values: gradients w.r.t. means, sigmas and values from
// `_spread_values_backward`; the integer points carry none.
#include <torch/autograd.h>
#include <torch/library.h>

#include "kernels/spread_values/spread_values.h"

namespace indexgrad {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Variable;
using torch::autograd::variable_list;

class SpreadValuesFunction
    : public torch::autograd::Function<SpreadValuesFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const Variable& points,
                               const Variable& means, const Variable& sigmas,
                               const Variable& values, int64_t chunk_size,
                               double tolerance) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor out =
        spread_values(points, means, sigmas, values, chunk_size, tolerance);
    ctx->save_for_backward({points, means, sigmas, values});
    ctx->saved_data["chunk_size"] = chunk_size;
    ctx->saved_data["tolerance"] = tolerance;
    return {out};
  }

  static variable_list backward(AutogradContext* ctx,
                                const variable_list& grad_output) {
    const auto s = ctx->get_saved_variables();
    auto grads = detail::_spread_values_backward(
        grad_output[0], s[0], s[1], s[2], s[3],
        ctx->saved_data["chunk_size"].toInt(),
        ctx->saved_data["tolerance"].toDouble());
    return {Variable(),          std::get<0>(grads), std::get<1>(grads),
            std::get<2>(grads), Variable(),          Variable()};
  }
};

class SpreadValuesBackwardFunction
    : public torch::autograd::Function<SpreadValuesBackwardFunction> {
 public:
  static variable_list forward(AutogradContext*, const Variable& grad,
                               const Variable& points, const Variable& means,
                               const Variable& sigmas, const Variable& values,
                               int64_t chunk_size, double tolerance) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto g = detail::_spread_values_backward(grad, points, means, sigmas,
                                             values, chunk_size, tolerance);
    return {std::get<0>(g), std::get<1>(g), std::get<2>(g)};
  }

  static variable_list backward(AutogradContext*, const variable_list&) {
    TORCH_CHECK(false,
                "_spread_values_backward: double backward is not supported");
  }
};

at::Tensor spread_values_autograd(const at::Tensor& points,
                                  const at::Tensor& means,
                                  const at::Tensor& sigmas,
                                  const at::Tensor& values, int64_t chunk_size,
                                  double tolerance) {
  return SpreadValuesFunction::apply(points, means, sigmas, values, chunk_size,
                                     tolerance)[0];
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> spread_values_backward_autograd(
    const at::Tensor& grad, const at::Tensor& points, const at::Tensor& means,
    const at::Tensor& sigmas, const at::Tensor& values, int64_t chunk_size,
    double tolerance) {
  auto g = SpreadValuesBackwardFunction::apply(grad, points, means, sigmas,
                                               values, chunk_size, tolerance);
  return {g[0], g[1], g[2]};
}

}  // namespace

TORCH_LIBRARY_IMPL(indexgrad, Autograd, m) {
  m.impl("spread_values", TORCH_FN(spread_values_autograd));
  m.impl("_spread_values_backward", TORCH_FN(spread_values_backward_autograd));
}

}  // namespace indexgrad
