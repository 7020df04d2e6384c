// CPU kernel of sparse_contract and its backward. Parallel over the batch
// (each instance scatters into its own slice of y / grad_x: no races).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "kernels/common/checks.h"
#include "kernels/sparse_contract/sparse_contract.h"
#include "kernels/sparse_contract/sparse_contract_math.h"

namespace indexgrad {
namespace {

struct PlainAdd {
  template <typename scalar_t>
  void operator()(scalar_t* at, scalar_t value) const { *at += value; }
};

// Each batch row in one thread: its entries add into its own rows of y
// (and of grad_x), so no two threads touch one element.
template <typename scalar_t>
void forward_loop(const ContractLayout& layout, int64_t batch, int64_t nnz,
                  const int64_t* indices, const scalar_t* values,
                  const scalar_t* x, scalar_t* y) {
  at::parallel_for(0, batch, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      for (int64_t k = 0; k < nnz; ++k) {
        contract_entry_forward(layout, nnz, indices, values, x, y, b, k, PlainAdd{});
      }
    }
  });
}

template <typename scalar_t>
void backward_loop(const ContractLayout& layout, int64_t batch, int64_t nnz,
                   const int64_t* indices, const scalar_t* values,
                   const scalar_t* x, const scalar_t* grad_y,
                   scalar_t* grad_values, scalar_t* grad_x) {
  at::parallel_for(0, batch, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      for (int64_t k = 0; k < nnz; ++k) {
        contract_entry_backward(layout, nnz, indices, values, x, grad_y, grad_values, grad_x,
                                b, k, PlainAdd{});
      }
    }
  });
}

at::Tensor sparse_contract_cpu(const at::Tensor& indices,
                               const at::Tensor& values,
                               at::IntArrayRef out_shape, const at::Tensor& x) {
  const ContractLayout layout = detail::check_and_layout(
      "sparse_contract", indices, values, out_shape, x);
  const int64_t batch = x.size(0);
  at::Tensor y = at::zeros(detail::output_shape(batch, out_shape), x.options());
  if (y.numel() == 0 || indices.size(1) == 0) return y;
  const at::Tensor indices_c = indices.contiguous();
  const at::Tensor values_c = values.contiguous();
  const at::Tensor x_c = x.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_contract_cpu", [&] {
    forward_loop<scalar_t>(layout, batch, indices.size(1),
                           indices_c.data_ptr<int64_t>(),
                           values_c.data_ptr<scalar_t>(),
                           x_c.data_ptr<scalar_t>(), y.data_ptr<scalar_t>());
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor> sparse_contract_backward_cpu(
    const at::Tensor& grad_y, const at::Tensor& indices,
    const at::Tensor& values, const at::Tensor& x, at::IntArrayRef out_shape) {
  const char* op = "_sparse_contract_backward";
  const ContractLayout layout =
      detail::check_and_layout(op, indices, values, out_shape, x);
  detail::check_grad_y(op, grad_y, x, out_shape);
  const int64_t batch = x.size(0);
  at::Tensor grad_values = at::zeros_like(values);
  at::Tensor grad_x = at::zeros_like(x);
  if (grad_y.numel() == 0 || indices.size(1) == 0) {
    return {grad_values, grad_x};
  }
  const at::Tensor indices_c = indices.contiguous();
  const at::Tensor values_c = values.contiguous();
  const at::Tensor x_c = x.contiguous();
  const at::Tensor grad_y_c = grad_y.contiguous();
  grad_values = grad_values.contiguous();
  grad_x = grad_x.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_contract_backward_cpu",
                             [&] {
                               backward_loop<scalar_t>(
                                   layout, batch, indices.size(1),
                                   indices_c.data_ptr<int64_t>(),
                                   values_c.data_ptr<scalar_t>(),
                                   x_c.data_ptr<scalar_t>(),
                                   grad_y_c.data_ptr<scalar_t>(),
                                   grad_values.data_ptr<scalar_t>(),
                                   grad_x.data_ptr<scalar_t>());
                             });
  return {grad_values, grad_x};
}

}  // namespace

TORCH_LIBRARY_IMPL(indexgrad, CPU, m) {
  m.impl("sparse_contract", TORCH_FN(sparse_contract_cpu));
  m.impl("_sparse_contract_backward", TORCH_FN(sparse_contract_backward_cpu));
}

}  // namespace indexgrad
