#include "sparse_hyper/sort_layer.h"

#include <cmath>

#include "kernels/half_permutation/half_permutation.h"

namespace indexgrad {
namespace sparse_hyper {

SortLayerImpl::SortLayerImpl(SortLayerOptions options_)
    : SortModuleImpl("SortLayer"), options(std::move(options_)) {
  TORCH_CHECK(options.num_samples() >= 0, "SortLayer: num_samples must be >= 0, got ",
              options.num_samples());
  TORCH_CHECK(std::isfinite(options.temperature()) && options.temperature() > 0,
              "SortLayer: temperature must be a positive finite number, got ",
              options.temperature());
  calls = register_buffer("calls", at::zeros({}, at::kLong));
}

SortOutput SortLayerImpl::forward(const at::Tensor& keys, const at::Tensor& values) {
  CheckSortArgs("SortLayer", keys, values);
  if (!is_training()) return HardSort(keys, values);
  const int64_t batch = keys.size(0), n = keys.size(1);
  if (n == 1) return SortOutput{values, {values}, {}, {}};
  int64_t depth_count = 0;
  while ((int64_t{1} << depth_count) < n) ++depth_count;
  const int64_t length = int64_t{1} << depth_count;  // N
  at::Tensor k = keys;
  at::Tensor x = values.reshape({batch, n, -1});  // [batch, n, f]
  if (length > n) {
    const at::Tensor pad_key =
        std::get<0>(keys.detach().max(1, /*keepdim=*/true)) + 50.0 / options.temperature();
    k = at::cat({keys, pad_key.expand({batch, length - n})}, 1);
    x = at::cat({x, at::zeros({batch, length - n, x.size(2)}, x.options())}, 1);
  }
  const int64_t call = calls.item<int64_t>();
  calls.add_(1);
  std::vector<int64_t> level_shape = values.sizes().vec();
  level_shape[1] = length;
  // x_i = P^i(o(x_{i-1})) x_{i-1}, all levels in one op; level d is seeded
  // with seed * 1000003 + call * 64 + d.
  auto [levels, rows, weights] = quicksort_levels(
      k, x, options.num_samples(), options.temperature(), options.seed() * 1000003 + call * 64);
  SortOutput out;
  for (int64_t depth = 0; depth < depth_count; ++depth) {
    out.steps.emplace_back(rows[depth], weights[depth]);
    // [batch, N, 1 + f] -> the values part, viewed in the caller's shape.
    out.levels.push_back(levels[depth].narrow(2, 1, x.size(2)).view(level_shape));
  }
  out.output = out.levels.back().narrow(1, 0, n);
  return out;
}

}  // namespace sparse_hyper
}  // namespace indexgrad
