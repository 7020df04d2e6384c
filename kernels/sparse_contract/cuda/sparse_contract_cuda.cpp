// CUDA host entry of sparse_contract: checks, device guard, stream, then the
// raw-pointer launchers of sparse_contract_kernel.cu. Compiled only in CUDA
// builds (CMake on the GPU machine; compile-checked by `--config=cuda`).
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "kernels/common/cuda/launch_check.h"

#include "kernels/common/checks.h"
#include "kernels/sparse_contract/cuda/sparse_contract_kernel.h"
#include "kernels/sparse_contract/sparse_contract.h"

namespace indexgrad {
namespace {

// One matrix for every row (indices and values of batch 1): the kernels
// take one entry list per row, so the CUDA path expands it (the CPU kernel
// has loops that do not); the backward sums the rows' value gradients.
at::Tensor per_row(const at::Tensor& t, int64_t batch) {
  if (t.size(0) == batch) return t.contiguous();
  std::vector<int64_t> sizes = t.sizes().vec();
  sizes[0] = batch;
  return t.expand(sizes).contiguous();
}

at::Tensor sparse_contract_cuda(const at::Tensor& indices,
                                const at::Tensor& values,
                                at::IntArrayRef out_shape,
                                const at::Tensor& x) {
  const char* op = "sparse_contract";
  cuda::check_on_cuda(op, "x", x);
  const ContractLayout layout =
      detail::check_and_layout(op, indices, values, out_shape, x);
  const c10::cuda::CUDAGuard guard(x.device());
  void* stream = at::cuda::getCurrentCUDAStream().stream();
  const int64_t batch = x.size(0);
  at::Tensor y = at::zeros(detail::output_shape(batch, out_shape), x.options());
  if (y.numel() == 0 || indices.size(1) == 0) return y;
  const at::Tensor indices_c = per_row(indices, batch);
  const at::Tensor values_c = per_row(values, batch);
  const at::Tensor x_c = x.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_contract_cuda", [&] {
    cuda::sparse_contract_forward<scalar_t>(
        layout, batch, indices.size(1), indices_c.data_ptr<int64_t>(),
        values_c.data_ptr<scalar_t>(), x_c.data_ptr<scalar_t>(),
        y.data_ptr<scalar_t>(), stream);
  });
  cuda::check_launch(op);
  return y;
}

std::tuple<at::Tensor, at::Tensor> sparse_contract_backward_cuda(
    const at::Tensor& grad_y, const at::Tensor& indices,
    const at::Tensor& values, const at::Tensor& x, at::IntArrayRef out_shape) {
  const char* op = "_sparse_contract_backward";
  cuda::check_on_cuda(op, "x", x);
  const ContractLayout layout =
      detail::check_and_layout(op, indices, values, out_shape, x);
  detail::check_grad_y(op, grad_y, x, out_shape);
  const int64_t batch = x.size(0);
  const c10::cuda::CUDAGuard guard(x.device());
  void* stream = at::cuda::getCurrentCUDAStream().stream();
  at::Tensor grad_x = at::zeros(x.sizes(), x.options());
  if (grad_y.numel() == 0 || indices.size(1) == 0) {
    return {at::zeros(values.sizes(), values.options()), grad_x};
  }
  const at::Tensor indices_c = per_row(indices, batch);
  const at::Tensor values_c = per_row(values, batch);
  at::Tensor grad_rows = at::zeros(values_c.sizes(), values.options());
  const at::Tensor x_c = x.contiguous();
  const at::Tensor grad_y_c = grad_y.contiguous();
  AT_DISPATCH_FLOATING_TYPES(
      x.scalar_type(), "sparse_contract_backward_cuda", [&] {
        cuda::sparse_contract_backward<scalar_t>(
            layout, batch, indices.size(1), indices_c.data_ptr<int64_t>(),
            values_c.data_ptr<scalar_t>(), x_c.data_ptr<scalar_t>(),
            grad_y_c.data_ptr<scalar_t>(), grad_rows.data_ptr<scalar_t>(),
            grad_x.data_ptr<scalar_t>(), stream);
      });
  cuda::check_launch(op);
  if (values.size(0) != batch) grad_rows = grad_rows.sum(0, /*keepdim=*/true);
  return {grad_rows, grad_x};
}

}  // namespace

TORCH_LIBRARY_IMPL(indexgrad, CUDA, m) {
  m.impl("sparse_contract", TORCH_FN(sparse_contract_cuda));
  m.impl("_sparse_contract_backward", TORCH_FN(sparse_contract_backward_cuda));
}

}  // namespace indexgrad
