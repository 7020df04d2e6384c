// Schema, dispatcher entries and shared checks of half_permutation and
// half_permutation_apply.
#include "kernels/half_permutation/half_permutation.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <cmath>
#include <cstdlib>

#include "kernels/common/checks.h"

namespace indexgrad {

std::tuple<at::Tensor, at::Tensor> half_permutation(const at::Tensor& keys,
                                                    int64_t depth,
                                                    int64_t num_samples,
                                                    double temperature,
                                                    int64_t seed) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("indexgrad::half_permutation", "")
                       .typed<decltype(half_permutation)>();
  return op.call(keys, depth, num_samples, temperature, seed);
}

at::Tensor half_permutation_apply(const at::Tensor& rows,
                                  const at::Tensor& weights,
                                  const at::Tensor& values, bool transpose) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("indexgrad::half_permutation_apply", "")
          .typed<decltype(half_permutation_apply)>();
  return op.call(rows, weights, values, transpose);
}

std::tuple<TensorVector, TensorVector, TensorVector> quicksort_levels(
    const at::Tensor& keys, const at::Tensor& values, int64_t num_samples,
    double temperature, int64_t seed) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("indexgrad::quicksort_levels", "")
                       .typed<decltype(quicksort_levels)>();
  return op.call(keys, values, num_samples, temperature, seed);
}

namespace detail {

std::tuple<at::Tensor, at::Tensor> _quicksort_levels_backward(
    at::TensorList grad_levels, const at::Tensor& keys, const at::Tensor& values,
    at::TensorList levels, at::TensorList rows, at::TensorList weights,
    double temperature) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("indexgrad::_quicksort_levels_backward", "")
          .typed<decltype(_quicksort_levels_backward)>();
  return op.call(grad_levels, keys, values, levels, rows, weights, temperature);
}

at::Tensor _half_permutation_backward(const at::Tensor& grad_weights,
                                      const at::Tensor& keys,
                                      const at::Tensor& rows,
                                      const at::Tensor& weights, int64_t depth,
                                      double temperature) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("indexgrad::_half_permutation_backward", "")
          .typed<decltype(_half_permutation_backward)>();
  return op.call(grad_weights, keys, rows, weights, depth, temperature);
}

std::tuple<at::Tensor, at::Tensor> _half_permutation_apply_backward(
    const at::Tensor& grad, const at::Tensor& rows, const at::Tensor& weights,
    const at::Tensor& values, bool transpose) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("indexgrad::_half_permutation_apply_backward", "")
          .typed<decltype(_half_permutation_apply_backward)>();
  return op.call(grad, rows, weights, values, transpose);
}

void check_half_permutation_args(const char* op, const at::Tensor& keys,
                                 int64_t depth, int64_t num_samples,
                                 double temperature) {
  check_dim(op, "keys", keys, 2);
  check_floating(op, "keys", keys);
  TORCH_CHECK(depth >= 0 && depth < 62, op,
              ": depth must be in [0, 62), got ", depth);
  const int64_t n = keys.size(1);
  const int64_t parts = int64_t{1} << (depth + 1);
  TORCH_CHECK(n >= 2 && n % parts == 0, op, ": keys has n = ", n,
              " columns; level depth = ", depth,
              " needs n >= 2 and divisible by 2^(depth+1) = ", parts,
              " (buckets of even size)");
  TORCH_CHECK(num_samples >= 0, op, ": num_samples must be >= 0, got ",
              num_samples);
  TORCH_CHECK(std::isfinite(temperature) && temperature > 0, op,
              ": temperature must be a positive finite number, got ",
              temperature);
}

void check_apply_args(const char* op, const at::Tensor& rows,
                      const at::Tensor& weights, const at::Tensor& values) {
  check_dim(op, "rows", rows, 3);
  check_long(op, "rows", rows);
  check_dim(op, "weights", weights, 3);
  check_floating(op, "weights", weights);
  TORCH_CHECK(rows.sizes() == weights.sizes(), op,
              ": rows and weights must have the same shape [batch, n, S], "
              "got ",
              shape_string(rows.sizes()), " and ",
              shape_string(weights.sizes()));
  TORCH_CHECK(values.dim() >= 2, op,
              ": values must be [batch, n, ...], got shape ",
              shape_string(values.sizes()));
  TORCH_CHECK(values.size(0) == rows.size(0) && values.size(1) == rows.size(1),
              op, ": values must be [batch, n, ...] with batch = ",
              rows.size(0), " and n = ", rows.size(1),
              " (from rows), got shape ", shape_string(values.sizes()));
  check_same_dtype(op, "weights", weights, "values", values);
  check_same_device(op, "rows", rows, "weights", weights);
  check_same_device(op, "weights", weights, "values", values);
}

void check_rows_in_range(const char* op, const at::Tensor& rows) {
  if (rows.numel() == 0) return;
  const auto [lo_t, hi_t] = at::aminmax(rows);  // one pass
  const int64_t lo = lo_t.item<int64_t>();
  const int64_t hi = hi_t.item<int64_t>();
  TORCH_CHECK(lo >= 0 && hi < rows.size(1), op, ": rows must lie in [0, n = ",
              rows.size(1), "), got values from ", lo, " to ", hi);
}

[[noreturn]] void fail_rows_outside_buckets(const char* op, const at::Tensor& rows,
                               int64_t bucket_size) {
  check_rows_in_range(op, rows);
  TORCH_CHECK(false, op, ": rows must stay in their column's bucket of ",
              bucket_size, " (rows of another level or layout?)");
  abort();  // not reached: TORCH_CHECK(false) throws
}


void check_quicksort_args(const char* op, const at::Tensor& keys, const at::Tensor& values,
                          int64_t num_samples, double temperature) {
  check_half_permutation_args(op, keys, /*depth=*/0, num_samples, temperature);
  const int64_t n = keys.size(1);
  TORCH_CHECK((n & (n - 1)) == 0, op, ": keys must hold a power of two n >= 2 per row, got n = ",
              n, " (SortLayer pads other lengths)");
  TORCH_CHECK(values.dim() == 3 && values.size(0) == keys.size(0) && values.size(1) == n, op,
              ": values must be [batch, n, f] with batch = ", keys.size(0), " and n = ", n,
              " (from keys), got shape ", values.sizes());
  TORCH_CHECK(values.scalar_type() == keys.scalar_type(), op,
              ": keys and values must have the same dtype, got ", keys.scalar_type(), " and ",
              values.scalar_type());
  check_same_device(op, "keys", keys, "values", values);
}

at::Tensor bucket_ranks(const at::Tensor& keys, int64_t bucket_size) {
  const at::Tensor k = keys.reshape({-1, bucket_size});
  const at::Tensor order = std::get<1>(k.sort(/*stable=*/true, 1, /*descending=*/false));
  at::Tensor ranks = at::empty_like(order);
  ranks.scatter_(1, order, at::arange(bucket_size, order.options()).expand_as(order));
  return ranks.reshape({-1});
}

int64_t quicksort_level_count(int64_t n) {
  int64_t levels = 0;
  while ((int64_t{1} << levels) < n) ++levels;
  return levels;
}

void check_quicksort_backward_args(const char* op, at::TensorList grad_levels,
                                   const at::Tensor& keys, const at::Tensor& values,
                                   at::TensorList levels, at::TensorList rows,
                                   at::TensorList weights, double temperature) {
  const int64_t batch = keys.size(0), n = keys.size(1);
  const int64_t L = quicksort_level_count(n);
  TORCH_CHECK(static_cast<int64_t>(grad_levels.size()) == L &&
                  static_cast<int64_t>(levels.size()) == L &&
                  static_cast<int64_t>(rows.size()) == L &&
                  static_cast<int64_t>(weights.size()) == L,
              op, ": needs one grad_levels, levels, rows and weights tensor per level (", L,
              " for n = ", n, "), got ", grad_levels.size(), ", ", levels.size(), ", ",
              rows.size(), " and ", weights.size());
  check_quicksort_args(op, keys, values, L > 0 ? rows[0].size(-1) - 1 : 0, temperature);
  const int64_t f1 = values.size(2) + 1, S = L > 0 ? rows[0].size(-1) : 1;
  const std::vector<int64_t> level_shape = {batch, n, f1}, step_shape = {batch, n, S};
  for (int64_t d = 0; d < L; ++d) {
    TORCH_CHECK(levels[d].sizes() == at::IntArrayRef(level_shape) &&
                    grad_levels[d].sizes() == at::IntArrayRef(level_shape) &&
                    rows[d].sizes() == at::IntArrayRef(step_shape) &&
                    weights[d].sizes() == at::IntArrayRef(step_shape) &&
                    rows[d].scalar_type() == at::kLong &&
                    weights[d].scalar_type() == keys.scalar_type() &&
                    grad_levels[d].scalar_type() == keys.scalar_type(),
                op, ": level ", d, " must have levels and grad_levels [", batch, ", ", n, ", ",
                f1, "] and rows (int64) and weights [", batch, ", ", n, ", ", S,
                "] of the keys' dtype, got ", levels[d].sizes(), ", ", grad_levels[d].sizes(),
                ", ", rows[d].sizes(), " and ", weights[d].sizes());
    check_same_device(op, "keys", keys, "levels", levels[d]);
    check_same_device(op, "keys", keys, "grad_levels", grad_levels[d]);
    check_same_device(op, "keys", keys, "rows", rows[d]);
    check_same_device(op, "keys", keys, "weights", weights[d]);
  }
}

void check_rows_in_buckets(const char* op, const at::Tensor& rows, int64_t bucket_size) {
  if (rows.numel() == 0) return;
  const at::Tensor column = at::arange(rows.size(1), rows.options()).view({1, -1, 1});
  const at::Tensor start = column.div(bucket_size, "floor").mul_(bucket_size);
  const bool inside = (rows >= start).logical_and_(rows < start + bucket_size).all().item<bool>();
  if (!inside) fail_rows_outside_buckets(op, rows, bucket_size);
}

}  // namespace detail
}  // namespace indexgrad

TORCH_LIBRARY_FRAGMENT(indexgrad, m) {
  m.def(
      "half_permutation(Tensor keys, int depth, int num_samples, "
      "float temperature, int seed) -> (Tensor, Tensor)");
  m.def(
      "_half_permutation_backward(Tensor grad_weights, Tensor keys, "
      "Tensor rows, Tensor weights, int depth, float temperature) -> Tensor");
  m.def(
      "half_permutation_apply(Tensor rows, Tensor weights, Tensor values, "
      "bool transpose) -> Tensor");
  m.def(
      "_half_permutation_apply_backward(Tensor grad, Tensor rows, "
      "Tensor weights, Tensor values, bool transpose) -> (Tensor, Tensor)");
  m.def(
      "quicksort_levels(Tensor keys, Tensor values, int num_samples, "
      "float temperature, int seed) -> (Tensor[], Tensor[], Tensor[])");
  m.def(
      "_quicksort_levels_backward(Tensor[] grad_levels, Tensor keys, "
      "Tensor values, Tensor[] levels, Tensor[] rows, Tensor[] weights, "
      "float temperature) -> (Tensor, Tensor)");
}
