// sparse_contract: batched sparse-times-dense tensor contraction.
//
//   y[b, o] = sum_k values[b, k] * x[b, i]   for tuples (o, i) = indices[b, k]
//
// indices [batch, nnz, p + q] int64: p output components (out_shape), then q
//         input components (x.shape[1:]). Duplicate tuples add up.
// values  [batch, nnz] float/double.
//         indices and values may instead have batch 1: one matrix applied
//         to every row of x (no copy per row; grad_values is then [1, nnz],
//         the sum over the rows).
// x       [batch, *in_shape], same dtype as values.
// returns [batch, *out_shape].
//
// Differentiable in values and x (the backward is the op
// `indexgrad::_sparse_contract_backward`); indices are integers and carry no
// gradient. Python: torch.ops.indexgrad.sparse_contract after
// torch.ops.load_library("libindexgrad.so").
#pragma once

#include <ATen/ATen.h>

#include <tuple>
#include <vector>

#include "kernels/sparse_contract/sparse_contract_math.h"

namespace indexgrad {

at::Tensor sparse_contract(const at::Tensor& indices, const at::Tensor& values,
                           at::IntArrayRef out_shape, const at::Tensor& x);

namespace detail {

// Returns (grad_values [batch, nnz], grad_x [batch, *in_shape]).
std::tuple<at::Tensor, at::Tensor> _sparse_contract_backward(
    const at::Tensor& grad_y, const at::Tensor& indices,
    const at::Tensor& values, const at::Tensor& x, at::IntArrayRef out_shape);

// Shared by the CPU and CUDA host entries: checks every argument and returns
// the flattening layout. `op` names the caller in messages.
ContractLayout check_and_layout(const char* op, const at::Tensor& indices,
                                const at::Tensor& values,
                                at::IntArrayRef out_shape, const at::Tensor& x);

// [batch, *out_shape]
std::vector<int64_t> output_shape(int64_t batch, at::IntArrayRef out_shape);

// The backward's extra check: grad_y is [batch, *out_shape], like x.
void check_grad_y(const char* op, const at::Tensor& grad_y,
                  const at::Tensor& x, at::IntArrayRef out_shape);

}  // namespace detail
}  // namespace indexgrad
