// Schema of sparse_contract and its backward, the C++ entry points that call
// the dispatcher, and the argument checks shared by the CPU and CUDA kernels.
#include "kernels/sparse_contract/sparse_contract.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "kernels/common/checks.h"

namespace indexgrad {

at::Tensor sparse_contract(const at::Tensor& indices, const at::Tensor& values,
                           at::IntArrayRef out_shape, const at::Tensor& x) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("indexgrad::sparse_contract", "")
                       .typed<decltype(sparse_contract)>();
  return op.call(indices, values, out_shape, x);
}

namespace detail {

std::tuple<at::Tensor, at::Tensor> _sparse_contract_backward(
    const at::Tensor& grad_y, const at::Tensor& indices,
    const at::Tensor& values, const at::Tensor& x, at::IntArrayRef out_shape) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("indexgrad::_sparse_contract_backward", "")
          .typed<decltype(_sparse_contract_backward)>();
  return op.call(grad_y, indices, values, x, out_shape);
}

ContractLayout check_and_layout(const char* op, const at::Tensor& indices,
                                const at::Tensor& values,
                                at::IntArrayRef out_shape,
                                const at::Tensor& x) {
  check_dim(op, "indices", indices, 3);
  check_long(op, "indices", indices);
  check_dim(op, "values", values, 2);
  check_floating(op, "values", values);
  check_floating(op, "x", x);
  check_same_dtype(op, "values", values, "x", x);
  check_same_device(op, "indices", indices, "values", values);
  check_same_device(op, "indices", indices, "x", x);
  TORCH_CHECK(x.dim() >= 2, op,
              ": x must be [batch, *in_shape] with at least one input "
              "dimension, got shape ",
              shape_string(x.sizes()));
  const int64_t batch = x.size(0);
  TORCH_CHECK(indices.size(0) == values.size(0) &&
                  (indices.size(0) == batch || indices.size(0) == 1),
              op,
              ": indices and values must have x's batch size or 1 (one "
              "matrix for every row), got indices ",
              shape_string(indices.sizes()), ", values ",
              shape_string(values.sizes()), ", x ", shape_string(x.sizes()));
  TORCH_CHECK(indices.size(1) == values.size(1), op,
              ": indices and values must have the same number of entries "
              "(dim 1), got indices ",
              shape_string(indices.sizes()), " and values ",
              shape_string(values.sizes()));
  const int64_t rank_out = static_cast<int64_t>(out_shape.size());
  const int64_t rank_in = x.dim() - 1;
  TORCH_CHECK(rank_out >= 1 && rank_out <= kMaxContractRank, op,
              ": out_shape must have 1 to ", kMaxContractRank,
              " dimensions, got ", shape_string(out_shape));
  TORCH_CHECK(rank_in <= kMaxContractRank, op, ": x may have at most ",
              kMaxContractRank, " input dimensions, got shape ",
              shape_string(x.sizes()));
  for (int64_t s : out_shape) {
    TORCH_CHECK(s >= 0, op, ": out_shape must be non-negative, got ",
                shape_string(out_shape));
  }
  TORCH_CHECK(indices.size(2) == rank_out + rank_in, op,
              ": each index tuple must have len(out_shape) + x.dim() - 1 = ",
              rank_out, " + ", rank_in, " = ", rank_out + rank_in,
              " components, got indices ", shape_string(indices.sizes()));

  std::vector<int64_t> bounds(out_shape.begin(), out_shape.end());
  for (int64_t d = 1; d < x.dim(); ++d) bounds.push_back(x.size(d));
  check_tuples_in_range(op, "indices", indices, bounds);

  ContractLayout layout;
  layout.rank_out = static_cast<int>(rank_out);
  layout.rank_in = static_cast<int>(rank_in);
  for (int64_t d = rank_out - 1; d >= 0; --d) {
    layout.out_strides[d] = layout.out_numel;
    layout.out_numel *= out_shape[d];
  }
  for (int64_t d = rank_in - 1; d >= 0; --d) {
    layout.in_strides[d] = layout.in_numel;
    layout.in_numel *= x.size(d + 1);
  }
  return layout;
}

std::vector<int64_t> output_shape(int64_t batch, at::IntArrayRef out_shape) {
  std::vector<int64_t> shape{batch};
  shape.insert(shape.end(), out_shape.begin(), out_shape.end());
  return shape;
}

void check_grad_y(const char* op, const at::Tensor& grad_y,
                  const at::Tensor& x, at::IntArrayRef out_shape) {
  const std::vector<int64_t> expected = output_shape(x.size(0), out_shape);
  TORCH_CHECK(grad_y.sizes() == at::IntArrayRef(expected), op,
              ": grad_y must have shape ", shape_string(expected), ", got ",
              shape_string(grad_y.sizes()));
  check_same_dtype(op, "grad_y", grad_y, "x", x);
  check_same_device(op, "grad_y", grad_y, "x", x);
}

}  // namespace detail
}  // namespace indexgrad

TORCH_LIBRARY_FRAGMENT(indexgrad, m) {
  m.def(
      "sparse_contract(Tensor indices, Tensor values, int[] out_shape, "
      "Tensor x) -> Tensor");
  m.def(
      "_sparse_contract_backward(Tensor grad_y, Tensor indices, "
      "Tensor values, Tensor x, int[] out_shape) -> (Tensor, Tensor)");
}
