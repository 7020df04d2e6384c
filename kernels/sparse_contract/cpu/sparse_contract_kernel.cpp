// CPU kernel of sparse_contract and its backward. Parallel over the batch
// (each instance scatters into its own slice of y / grad_x: no races); one
// matrix for every row (batch-1 indices) has its own loops below.
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

// One matrix for every row (indices and values of batch 1): x, y and their
// gradients as [numel, batch], so that an entry's products over the batch
// are one contiguous, vectorisable run. Forward and grad_x split the batch
// columns between threads (each thread runs every entry on its own columns,
// in the entries' order, as the per-row loop does); grad_values splits the
// entries (each sums its own products over the whole batch).
template <typename scalar_t>
void shared_forward_loop(const ContractLayout& layout, int64_t batch,
                         int64_t nnz, const int64_t* indices,
                         const scalar_t* values, const scalar_t* x_t,
                         scalar_t* y_t) {
  const int rank = layout.rank_out + layout.rank_in;
  at::parallel_for(0, batch, 16, [&](int64_t b0, int64_t b1) {
    for (int64_t k = 0; k < nnz; ++k) {
      int64_t o, i;
      contract_positions(layout, indices + k * rank, &o, &i);
      const scalar_t v = values[k];
      scalar_t* y_row = y_t + o * batch;
      const scalar_t* x_row = x_t + i * batch;
      for (int64_t b = b0; b < b1; ++b) y_row[b] += v * x_row[b];
    }
  });
}

template <typename scalar_t>
void shared_backward_loop(const ContractLayout& layout, int64_t batch,
                          int64_t nnz, const int64_t* indices,
                          const scalar_t* values, const scalar_t* x_t,
                          const scalar_t* grad_y_t, scalar_t* grad_values,
                          scalar_t* grad_x_t) {
  const int rank = layout.rank_out + layout.rank_in;
  at::parallel_for(0, nnz, 1024, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      int64_t o, i;
      contract_positions(layout, indices + k * rank, &o, &i);
      const scalar_t* gy_row = grad_y_t + o * batch;
      const scalar_t* x_row = x_t + i * batch;
      scalar_t sum = 0;
      for (int64_t b = 0; b < batch; ++b) sum += gy_row[b] * x_row[b];
      grad_values[k] = sum;
    }
  });
  at::parallel_for(0, batch, 16, [&](int64_t b0, int64_t b1) {
    for (int64_t k = 0; k < nnz; ++k) {
      int64_t o, i;
      contract_positions(layout, indices + k * rank, &o, &i);
      const scalar_t v = values[k];
      const scalar_t* gy_row = grad_y_t + o * batch;
      scalar_t* gx_row = grad_x_t + i * batch;
      for (int64_t b = b0; b < b1; ++b) gx_row[b] += v * gy_row[b];
    }
  });
}

// [batch, *shape] -> contiguous [numel, batch].
at::Tensor columns(const at::Tensor& t) {
  return t.reshape({t.size(0), -1}).t().contiguous();
}

bool is_shared(const at::Tensor& indices, int64_t batch) {
  return indices.size(0) == 1 && batch > 1;
}

at::Tensor sparse_contract_cpu(const at::Tensor& indices,
                               const at::Tensor& values,
                               at::IntArrayRef out_shape, const at::Tensor& x) {
  const ContractLayout layout = detail::check_and_layout(
      "sparse_contract", indices, values, out_shape, x);
  const int64_t batch = x.size(0);
  const std::vector<int64_t> y_shape = detail::output_shape(batch, out_shape);
  if (batch * layout.out_numel == 0 || indices.size(1) == 0) {
    return at::zeros(y_shape, x.options());
  }
  const at::Tensor indices_c = indices.contiguous();
  const at::Tensor values_c = values.contiguous();
  if (is_shared(indices, batch)) {
    const at::Tensor x_t = columns(x);
    at::Tensor y_t = at::zeros({layout.out_numel, batch}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_contract_cpu", [&] {
      shared_forward_loop<scalar_t>(layout, batch, indices.size(1),
                                    indices_c.data_ptr<int64_t>(),
                                    values_c.data_ptr<scalar_t>(),
                                    x_t.data_ptr<scalar_t>(),
                                    y_t.data_ptr<scalar_t>());
    });
    return y_t.t().reshape(y_shape).contiguous();
  }
  at::Tensor y = at::zeros(y_shape, x.options());
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
  if (grad_y.numel() == 0 || indices.size(1) == 0) {
    return {grad_values, at::zeros_like(x)};
  }
  const at::Tensor indices_c = indices.contiguous();
  const at::Tensor values_c = values.contiguous();
  if (is_shared(indices, batch)) {
    const at::Tensor x_t = columns(x);
    const at::Tensor grad_y_t = columns(grad_y);
    at::Tensor grad_x_t = at::zeros({layout.in_numel, batch}, x.options());
    grad_values = grad_values.contiguous();
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_contract_backward_cpu", [&] {
      shared_backward_loop<scalar_t>(
          layout, batch, indices.size(1), indices_c.data_ptr<int64_t>(),
          values_c.data_ptr<scalar_t>(), x_t.data_ptr<scalar_t>(),
          grad_y_t.data_ptr<scalar_t>(), grad_values.data_ptr<scalar_t>(),
          grad_x_t.data_ptr<scalar_t>());
    });
    return {grad_values, grad_x_t.t().reshape(x.sizes()).contiguous()};
  }
  const at::Tensor x_c = x.contiguous();
  const at::Tensor grad_y_c = grad_y.contiguous();
  grad_values = grad_values.contiguous();
  at::Tensor grad_x = at::zeros_like(x).contiguous();
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
