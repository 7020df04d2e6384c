// Schema, dispatcher entries and shared checks of spread_values.
#include "kernels/spread_values/spread_values.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>

#include "kernels/common/checks.h"
#include "kernels/common/tuple_rank.h"

namespace indexgrad {

at::Tensor spread_values(const at::Tensor& points, const at::Tensor& means,
                         const at::Tensor& sigmas, const at::Tensor& values,
                         int64_t chunk_size, double tolerance) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("indexgrad::spread_values", "")
                       .typed<decltype(spread_values)>();
  return op.call(points, means, sigmas, values, chunk_size, tolerance);
}

namespace detail {

std::tuple<at::Tensor, at::Tensor, at::Tensor> _spread_values_backward(
    const at::Tensor& grad, const at::Tensor& points, const at::Tensor& means,
    const at::Tensor& sigmas, const at::Tensor& values, int64_t chunk_size,
    double tolerance) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("indexgrad::_spread_values_backward", "")
          .typed<decltype(_spread_values_backward)>();
  return op.call(grad, points, means, sigmas, values, chunk_size, tolerance);
}

int64_t check_spread_values_args(const char* op, const at::Tensor& points,
                                 const at::Tensor& means,
                                 const at::Tensor& sigmas,
                                 const at::Tensor& values, int64_t chunk_size,
                                 double tolerance) {
  check_dim(op, "points", points, 4);
  check_long(op, "points", points);
  check_dim(op, "means", means, 3);
  check_dim(op, "sigmas", sigmas, 3);
  check_dim(op, "values", values, 2);
  check_floating(op, "means", means);
  check_same_dtype(op, "means", means, "sigmas", sigmas);
  check_same_dtype(op, "means", means, "values", values);
  for (const auto* t : {&means, &sigmas, &values}) {
    check_same_device(op, "points", points, "means/sigmas/values", *t);
  }
  const int64_t batch = means.size(0), k = means.size(1), rank = means.size(2);
  TORCH_CHECK(sigmas.sizes() == means.sizes(), op,
              ": sigmas must have the shape of means ",
              shape_string(means.sizes()), ", got ",
              shape_string(sigmas.sizes()));
  TORCH_CHECK(values.size(0) == batch && values.size(1) == k, op,
              ": values must be [batch, k] = [", batch, ", ", k, "], got ",
              shape_string(values.sizes()));
  TORCH_CHECK(points.size(0) == batch && points.size(1) == k &&
                  points.size(3) == rank,
              op, ": points must be [batch, k, samples, rank] = [", batch,
              ", ", k, ", s, ", rank, "], got ", shape_string(points.sizes()));
  TORCH_CHECK(rank >= 1 && rank <= kMaxTupleRank, op,
              ": tuple rank must be in [1, ", kMaxTupleRank, "], got ", rank);
  TORCH_CHECK(points.size(2) >= (int64_t(1) << rank), op,
              ": each tuple needs its 2^rank = ", int64_t(1) << rank,
              " floor/ceil neighbours first in points, got ", points.size(2),
              " samples per tuple");
  TORCH_CHECK(std::isfinite(tolerance) && tolerance >= 0 && tolerance < 1, op,
              ": tolerance must be in [0, 1) (0 = dense), got ", tolerance);
  TORCH_CHECK(chunk_size >= 0, op, ": chunk_size must be >= 0, got ",
              chunk_size);
  const int64_t chunk = chunk_size == 0 ? k : chunk_size;
  TORCH_CHECK(k == 0 || k % chunk == 0, op,
              ": the number of tuples k = ", k,
              " must be a multiple of chunk_size = ", chunk);
  if (means.numel() > 0) {
    // One read-back (a synchronisation on a GPU): [means have NaN or
    // infinity, smallest variance, variances have NaN]. An infinite mean
    // has no neighbours to give its value to: refused, as sample_tuples
    // refuses it.
    const at::Tensor stats =
        at::stack({at::isfinite(means).logical_not().any().to(at::kDouble),
                   sigmas.min().to(at::kDouble),
                   at::isnan(sigmas).any().to(at::kDouble)})
            .to(at::kCPU);
    const double* st = stats.data_ptr<double>();
    TORCH_CHECK(st[0] == 0, op, ": means contain NaN or infinity");
    TORCH_CHECK(st[1] > 0, op,
                ": sigmas (variances) must be positive and not NaN, got a "
                "minimum of ",
                st[1]);
    TORCH_CHECK(st[2] == 0, op, ": sigmas contain NaN");
  }
  return chunk == 0 ? 1 : chunk;
}

void check_spread_values_grad(const char* op, const at::Tensor& grad,
                              const at::Tensor& points, const at::Tensor& values) {
  TORCH_CHECK(grad.dim() == 3 && grad.size(0) == points.size(0) &&
                  grad.size(1) == points.size(1) &&
                  grad.size(2) == points.size(2),
              op, ": grad must be [batch, k, samples] like points, got ",
              grad.sizes());
  TORCH_CHECK(grad.scalar_type() == values.scalar_type(), op,
              ": grad must have the dtype of values, got ", grad.scalar_type());
  check_same_device(op, "points", points, "grad", grad);
}

SpreadLayout spread_layout(const at::Tensor& points, int64_t chunk, double tolerance) {
  SpreadLayout layout{};
  layout.rank = static_cast<int>(points.size(3));
  layout.s = points.size(2);
  layout.chunk = chunk;
  layout.max_excess = chunk_max_excess(chunk * points.size(2), tolerance);
  return layout;
}

SpreadGrid make_spread_grid(const at::Tensor& points, const at::Tensor& sigmas,
                            const SpreadLayout& layout, int64_t cell) {
  SpreadGrid g{};
  const int rank = layout.rank;
  g.n = points.numel() / rank;
  TORCH_CHECK(g.n > 0 && cell >= 0, "make_spread_grid: needs points and cell >= 0, got ", g.n,
              " points and cell ", cell);
  const at::Tensor flat = points.reshape({-1, rank});
  const at::Tensor ends = at::stack({std::get<0>(flat.min(0)), std::get<0>(flat.max(0))}).cpu();
  if (cell == 0) {
    // The reach sqrt(R^2 sigma) at the mean variance: a tuple's box then
    // spans a few cells per dimension.
    const double mean_sigma = sigmas.to(at::kDouble).mean().item<double>();
    const double reach = std::sqrt(std::min(layout.max_excess, 1e6) * mean_sigma);
    cell = std::isfinite(reach) ? std::max<int64_t>(1, static_cast<int64_t>(std::ceil(reach)))
                                : int64_t{1} << 20;
  }
  const int64_t chunks = g.n / (layout.chunk * layout.s);
  for (;; cell *= 2) {
    g.cell = cell;
    double cells = 1;  // in double first: the product may overflow int64
    for (int d = 0; d < rank; ++d) {
      g.lo[d] = ends[0][d].item<int64_t>();
      g.extent[d] = (ends[1][d].item<int64_t>() - g.lo[d]) / cell + 1;
      cells *= static_cast<double>(g.extent[d]);
    }
    if (cells * static_cast<double>(chunks) < 4e18) break;
  }
  g.cells_per_chunk = 1;
  for (int d = 0; d < rank; ++d) g.cells_per_chunk *= g.extent[d];
  return g;
}

}  // namespace detail
}  // namespace indexgrad

TORCH_LIBRARY_FRAGMENT(indexgrad, m) {
  m.def(
      "spread_values(Tensor points, Tensor means, Tensor sigmas, "
      "Tensor values, int chunk_size, float tolerance) -> Tensor");
  m.def(
      "_spread_values_backward(Tensor grad, Tensor points, Tensor means, "
      "Tensor sigmas, Tensor values, int chunk_size, float tolerance) "
      "-> (Tensor, Tensor, Tensor)");
}
