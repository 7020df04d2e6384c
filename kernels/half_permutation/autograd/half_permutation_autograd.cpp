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
    ctx->set_materialize_grads(false);  // no zero gradient for rows
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

// Outputs: levels (L), rows (L), weights (L), in that order.
class QuicksortLevelsFunction
    : public torch::autograd::Function<QuicksortLevelsFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const Variable& keys,
                               const Variable& values, int64_t num_samples,
                               double temperature, int64_t seed) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [levels, rows, weights] =
        quicksort_levels(keys, values, num_samples, temperature, seed);
    variable_list out, saved = {keys, values};
    for (const auto* part : {&levels, &rows, &weights}) {
      out.insert(out.end(), part->begin(), part->end());
      saved.insert(saved.end(), part->begin(), part->end());
    }
    ctx->save_for_backward(saved);
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["levels"] = static_cast<int64_t>(levels.size());
    variable_list fixed(rows.begin(), rows.end());
    fixed.insert(fixed.end(), weights.begin(), weights.end());
    ctx->mark_non_differentiable(fixed);
    // No zero gradients materialised for rows and weights (as large as
    // everything else together when num_samples = n).
    ctx->set_materialize_grads(false);
    return out;
  }

  static variable_list backward(AutogradContext* ctx,
                                const variable_list& grad_output) {
    const auto saved = ctx->get_saved_variables();
    const int64_t L = ctx->saved_data["levels"].toInt();
    auto part = [&](int64_t first) {
      return variable_list(saved.begin() + 2 + first * L, saved.begin() + 2 + (first + 1) * L);
    };
    const variable_list levels = part(0), rows = part(1), weights = part(2);
    variable_list grad_levels(grad_output.begin(), grad_output.begin() + L);
    for (int64_t d = 0; d < L; ++d) {
      if (!grad_levels[d].defined()) grad_levels[d] = at::zeros_like(levels[d]);
    }
    auto [grad_keys, grad_values] = detail::_quicksort_levels_backward(
        grad_levels, saved[0], saved[1], levels, rows, weights,
        ctx->saved_data["temperature"].toDouble());
    return {grad_keys, grad_values, Variable(), Variable(), Variable()};
  }
};

class QuicksortLevelsBackwardFunction
    : public torch::autograd::Function<QuicksortLevelsBackwardFunction> {
 public:
  static variable_list forward(AutogradContext*, at::TensorList grad_levels,
                               const Variable& keys, const Variable& values,
                               at::TensorList levels, at::TensorList rows,
                               at::TensorList weights, double temperature) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [gk, gv] = detail::_quicksort_levels_backward(grad_levels, keys, values, levels,
                                                       rows, weights, temperature);
    return {gk, gv};
  }

  static variable_list backward(AutogradContext*, const variable_list&) {
    TORCH_CHECK(false, "_quicksort_levels_backward: double backward is not supported");
  }
};

std::tuple<TensorVector, TensorVector, TensorVector> quicksort_levels_autograd(
    const at::Tensor& keys, const at::Tensor& values, int64_t num_samples,
    double temperature, int64_t seed) {
  const variable_list out =
      QuicksortLevelsFunction::apply(keys, values, num_samples, temperature, seed);
  const size_t L = out.size() / 3;
  return {TensorVector(out.begin(), out.begin() + L),
          TensorVector(out.begin() + L, out.begin() + 2 * L),
          TensorVector(out.begin() + 2 * L, out.end())};
}

std::tuple<at::Tensor, at::Tensor> quicksort_levels_backward_autograd(
    at::TensorList grad_levels, const at::Tensor& keys, const at::Tensor& values,
    at::TensorList levels, at::TensorList rows, at::TensorList weights,
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
