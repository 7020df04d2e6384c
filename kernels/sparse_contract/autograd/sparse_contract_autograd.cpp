// Autograd for sparse_contract: gradients w.r.t. values and x come from the
// op `_sparse_contract_backward`; indices are integer and get none.
#include <torch/autograd.h>
#include <torch/library.h>

#include "kernels/sparse_contract/sparse_contract.h"

namespace indexgrad {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Variable;
using torch::autograd::variable_list;

class SparseContractFunction
    : public torch::autograd::Function<SparseContractFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const Variable& indices,
                               const Variable& values,
                               at::IntArrayRef out_shape, const Variable& x) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor y = sparse_contract(indices, values, out_shape, x);
    ctx->save_for_backward({indices, values, x});
    ctx->saved_data["out_shape"] = out_shape.vec();
    return {y};
  }

  static variable_list backward(AutogradContext* ctx,
                                const variable_list& grad_output) {
    const auto saved = ctx->get_saved_variables();
    const auto out_shape = ctx->saved_data["out_shape"].toIntVector();
    auto grads = detail::_sparse_contract_backward(
        grad_output[0], saved[0], saved[1], saved[2], out_shape);
    return {Variable(), std::get<0>(grads), Variable(), std::get<1>(grads)};
  }
};

// The backward op itself is not differentiable (no double backward).
class SparseContractBackwardFunction
    : public torch::autograd::Function<SparseContractBackwardFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const Variable& grad_y,
                               const Variable& indices, const Variable& values,
                               const Variable& x, at::IntArrayRef out_shape) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto grads = detail::_sparse_contract_backward(grad_y, indices, values, x,
                                                   out_shape);
    return {std::get<0>(grads), std::get<1>(grads)};
  }

  static variable_list backward(AutogradContext*, const variable_list&) {
    TORCH_CHECK(false,
                "_sparse_contract_backward: double backward is not supported");
  }
};

at::Tensor sparse_contract_autograd(const at::Tensor& indices,
                                    const at::Tensor& values,
                                    at::IntArrayRef out_shape,
                                    const at::Tensor& x) {
  return SparseContractFunction::apply(indices, values, out_shape, x)[0];
}

std::tuple<at::Tensor, at::Tensor> sparse_contract_backward_autograd(
    const at::Tensor& grad_y, const at::Tensor& indices,
    const at::Tensor& values, const at::Tensor& x, at::IntArrayRef out_shape) {
  auto grads = SparseContractBackwardFunction::apply(grad_y, indices, values,
                                                     x, out_shape);
  return {grads[0], grads[1]};
}

}  // namespace

TORCH_LIBRARY_IMPL(indexgrad, Autograd, m) {
  m.impl("sparse_contract", TORCH_FN(sparse_contract_autograd));
  m.impl("_sparse_contract_backward",
         TORCH_FN(sparse_contract_backward_autograd));
}

}  // namespace indexgrad
