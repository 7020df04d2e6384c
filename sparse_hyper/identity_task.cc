#include "sparse_hyper/identity_task.h"

#include "kernels/common/checks.h"

namespace indexgrad {
namespace sparse_hyper {

IdentityEval EvaluateIdentity(const at::Tensor& tuples, const at::Tensor& values,
                              int64_t n) {
  const char* op = "EvaluateIdentity";
  check_dim(op, "tuples", tuples, 2);
  check_long(op, "tuples", tuples);
  TORCH_CHECK(n >= 1, op, ": n must be >= 1, got ", n);
  check_tuples_in_range(op, "tuples", tuples, {n, n});
  TORCH_CHECK(values.dim() == 1 && values.size(0) == tuples.size(0), op,
              ": values must be [k] = [", tuples.size(0), "], got ",
              shape_string(values.sizes()));
  IdentityEval eval;
  const int64_t k = tuples.size(0);
  if (k == 0) {
    eval.expected_mse = 1.0;
    return eval;
  }
  const at::Tensor row = tuples.select(1, 0), col = tuples.select(1, 1);
  const at::Tensor flat = row * n + col;  // n^2 < 2^63 for n < 3e9
  auto [unique, inverse, counts] =
      at::_unique2(flat, /*sorted=*/true, /*return_inverse=*/true);
  const at::Tensor w = at::zeros({unique.size(0)}, at::kDouble)
                           .index_add_(0, inverse, values.detach().to(at::kDouble));
  // Integer division (a plain `/` on int64 tensors is true division).
  const at::Tensor diag =
      at::div(unique, n, /*rounding_mode=*/"floor").eq(unique % n);  // [unique]
  const at::Tensor target = diag.to(at::kDouble);
  const int64_t diag_cells = diag.sum().item<int64_t>();
  const double sum_sq = (w - target).pow(2).sum().item<double>() +
                        static_cast<double>(n - diag_cells);
  eval.expected_mse = sum_sq / static_cast<double>(n);
  const int64_t on = row.eq(col).sum().item<int64_t>();
  eval.on_diagonal = static_cast<double>(on) / static_cast<double>(k);
  eval.exact = on == k && diag_cells == n;
  return eval;
}

}  // namespace sparse_hyper
}  // namespace indexgrad
