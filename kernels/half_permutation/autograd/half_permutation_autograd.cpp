// Autograd for half_permutation (gradient to keys through the weights; rows
// are integers) and half_permutation_apply (gradients to weights and values).
// The backward ops refuse a second derivative.
#include <torch/autograd.h>
#include <torch/library.h>

#include "kernels/half_permutation/half_permutation.h"

namespace indexgrad {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Variable;
using torch::autograd::variable_list;

class HalfPermutationFunction
    : public torch::autograd::Function<HalfPermutationFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const Variable& keys,
                               int64_t depth, int64_t num_samples,
                               double temperature, int64_t seed) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [rows, weights] =
        half_permutation(keys, depth, num_samples, temperature, seed);
    ctx->save_for_backward({keys, rows, weights});
    ctx->saved_data["depth"] = depth;
    ctx->saved_data["temperature"] = temperature;
    ctx->mark_non_differentiable({rows});
    return {rows, weights};
  }

  static variable_list backward(AutogradContext* ctx,
                                const variable_list& grad_output) {
    const auto saved = ctx->get_saved_variables();
    at::Tensor grad_weights = grad_output[1];
    if (!grad_weights.defined()) grad_weights = at::zeros_like(saved[2]);
    at::Tensor g = detail::_half_permutation_backward(
        grad_weights, saved[0], saved[1], saved[2],
        ctx->saved_data["depth"].toInt(),
        ctx->saved_data["temperature"].toDouble());
    return {g, Variable(), Variable(), Variable(), Variable()};
  }
};

class HalfPermutationBackwardFunction
    : public torch::autograd::Function<HalfPermutationBackwardFunction> {
 public:
  static variable_list forward(AutogradContext*, const Variable& grad_weights,
                               const Variable& keys, const Variable& rows,
                               const Variable& weights, int64_t depth,
                               double temperature) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return {detail::_half_permutation_backward(grad_weights, keys, rows,
                                               weights, depth, temperature)};
  }

  static variable_list backward(AutogradContext*, const variable_list&) {
    TORCH_CHECK(false,
                "_half_permutation_backward: double backward is not supported");
  }
};

class ApplyFunction : public torch::autograd::Function<ApplyFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const Variable& rows,
                               const Variable& weights, const Variable& values,
                               bool transpose) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor y = half_permutation_apply(rows, weights, values, transpose);
    ctx->save_for_backward({rows, weights, values});
    ctx->saved_data["transpose"] = transpose;
    return {y};
  }

  static variable_list backward(AutogradContext* ctx,
                                const variable_list& grad_output) {
    const auto saved = ctx->get_saved_variables();
    auto [grad_values, grad_weights] = detail::_half_permutation_apply_backward(
        grad_output[0], saved[0], saved[1], saved[2],
        ctx->saved_data["transpose"].toBool());
    return {Variable(), grad_weights, grad_values, Variable()};
  }
};

class ApplyBackwardFunction
    : public torch::autograd::Function<ApplyBackwardFunction> {
 public:
  static variable_list forward(AutogradContext*, const Variable& grad,
                               const Variable& rows, const Variable& weights,
                               const Variable& values, bool transpose) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [gv, gw] = detail::_half_permutation_apply_backward(grad, rows, weights,
                                                             values, transpose);
    return {gv, gw};
  }

  static variable_list backward(AutogradContext*, const variable_list&) {
    TORCH_CHECK(false,
                "_half_permutation_apply_backward: double backward is not "
                "supported");
  }
};

class QuicksortLevelsFunction
    : public torch::autograd::Function<QuicksortLevelsFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const Variable& keys,
                               const Variable& values, int64_t num_samples,
                               double temperature, int64_t seed) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [levels, rows, weights] =
        quicksort_levels(keys, values, num_samples, temperature, seed);
    ctx->save_for_backward({keys, values, levels, rows, weights});
    ctx->saved_data["temperature"] = temperature;
    ctx->mark_non_differentiable({rows, weights});
    return {levels, rows, weights};
  }

  static variable_list backward(AutogradContext* ctx,
                                const variable_list& grad_output) {
    const auto saved = ctx->get_saved_variables();
    at::Tensor grad_levels = grad_output[0];
    if (!grad_levels.defined()) grad_levels = at::zeros_like(saved[2]);
    auto [grad_keys, grad_values] = detail::_quicksort_levels_backward(
        grad_levels, saved[0], saved[1], saved[2], saved[3], saved[4],
        ctx->saved_data["temperature"].toDouble());
    return {grad_keys, grad_values, Variable(), Variable(), Variable()};
  }
};

class QuicksortLevelsBackwardFunction
    : public torch::autograd::Function<QuicksortLevelsBackwardFunction> {
 public:
  static variable_list forward(AutogradContext*, const Variable& grad_levels,
                               const Variable& keys, const Variable& values,
                               const Variable& levels, const Variable& rows,
                               const Variable& weights, double temperature) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [gk, gv] = detail::_quicksort_levels_backward(grad_levels, keys, values, levels,
                                                       rows, weights, temperature);
    return {gk, gv};
  }

  static variable_list backward(AutogradContext*, const variable_list&) {
    TORCH_CHECK(false, "_quicksort_levels_backward: double backward is not supported");
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> quicksort_levels_autograd(
    const at::Tensor& keys, const at::Tensor& values, int64_t num_samples,
    double temperature, int64_t seed) {
  auto out = QuicksortLevelsFunction::apply(keys, values, num_samples, temperature, seed);
  return {out[0], out[1], out[2]};
}

std::tuple<at::Tensor, at::Tensor> quicksort_levels_backward_autograd(
    const at::Tensor& grad_levels, const at::Tensor& keys, const at::Tensor& values,
    const at::Tensor& levels, const at::Tensor& rows, const at::Tensor& weights,
    double temperature) {
  auto out = QuicksortLevelsBackwardFunction::apply(grad_levels, keys, values, levels, rows,
                                                    weights, temperature);
  return {out[0], out[1]};
}

std::tuple<at::Tensor, at::Tensor> half_permutation_autograd(
    const at::Tensor& keys, int64_t depth, int64_t num_samples,
    double temperature, int64_t seed) {
  auto out = HalfPermutationFunction::apply(keys, depth, num_samples,
                                            temperature, seed);
  return {out[0], out[1]};
}

at::Tensor half_permutation_backward_autograd(const at::Tensor& grad_weights,
                                              const at::Tensor& keys,
                                              const at::Tensor& rows,
                                              const at::Tensor& weights,
                                              int64_t depth,
                                              double temperature) {
  return HalfPermutationBackwardFunction::apply(grad_weights, keys, rows,
                                                weights, depth, temperature)[0];
}

at::Tensor apply_autograd(const at::Tensor& rows, const at::Tensor& weights,
                          const at::Tensor& values, bool transpose) {
  return ApplyFunction::apply(rows, weights, values, transpose)[0];
}

std::tuple<at::Tensor, at::Tensor> apply_backward_autograd(
    const at::Tensor& grad, const at::Tensor& rows, const at::Tensor& weights,
    const at::Tensor& values, bool transpose) {
  auto out = ApplyBackwardFunction::apply(grad, rows, weights, values, transpose);
  return {out[0], out[1]};
}

}  // namespace

TORCH_LIBRARY_IMPL(indexgrad, Autograd, m) {
  m.impl("half_permutation", TORCH_FN(half_permutation_autograd));
  m.impl("_half_permutation_backward",
         TORCH_FN(half_permutation_backward_autograd));
  m.impl("half_permutation_apply", TORCH_FN(apply_autograd));
  m.impl("_half_permutation_apply_backward", TORCH_FN(apply_backward_autograd));
  m.impl("quicksort_levels", TORCH_FN(quicksort_levels_autograd));
  m.impl("_quicksort_levels_backward", TORCH_FN(quicksort_levels_backward_autograd));
}

}  // namespace indexgrad
