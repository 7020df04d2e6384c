// Schema and dispatcher entry of sample_tuples.
#include "kernels/sample_tuples/sample_tuples.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "kernels/common/checks.h"

namespace indexgrad {

at::Tensor sample_tuples(const at::Tensor& means, at::IntArrayRef sizes,
                         int64_t num_global, int64_t num_local,
                         at::IntArrayRef region, int64_t seed) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("indexgrad::sample_tuples", "")
                       .typed<decltype(sample_tuples)>();
  return op.call(means, sizes, num_global, num_local, region, seed);
}

namespace detail {

SampleLayout check_sample_tuples_args(const char* op, const at::Tensor& means,
                                      at::IntArrayRef sizes, int64_t num_global,
                                      int64_t num_local, at::IntArrayRef region,
                                      int64_t seed) {
  check_dim(op, "means", means, 3);
  check_floating(op, "means", means);
  const int64_t rank = means.size(2);
  TORCH_CHECK(rank >= 1 && rank <= kMaxTupleRank, op,
              ": means must be [batch, k, rank] with rank in [1, ",
              kMaxTupleRank, "], got shape ", shape_string(means.sizes()));
  TORCH_CHECK(static_cast<int64_t>(sizes.size()) == rank, op,
              ": sizes must have one entry per tuple component (", rank,
              "), got ", shape_string(sizes));
  TORCH_CHECK(static_cast<int64_t>(region.size()) == rank, op,
              ": region must have one entry per tuple component (", rank,
              "), got ", shape_string(region));
  for (int64_t d = 0; d < rank; ++d) {
    TORCH_CHECK(sizes[d] >= 1, op, ": sizes must be positive, got ",
                shape_string(sizes));
    TORCH_CHECK(region[d] >= 1, op, ": region must be positive, got ",
                shape_string(region));
  }
  TORCH_CHECK(num_global >= 0, op, ": num_global must be >= 0, got ",
              num_global);
  TORCH_CHECK(num_local >= 0, op, ": num_local must be >= 0, got ",
              num_local);
  if (means.numel() > 0) {
    // One read-back for all three: [any NaN, min per component, max per
    // component].
    const at::Tensor flat = means.reshape({-1, rank});
    const at::Tensor stats =
        at::cat({at::isnan(flat).any().to(at::kDouble).view({1}),
                 std::get<0>(flat.min(0)).to(at::kDouble),
                 std::get<0>(flat.max(0)).to(at::kDouble)})
            .to(at::kCPU);
    const double* st = stats.data_ptr<double>();
    TORCH_CHECK(st[0] == 0, op, ": means contain NaN");
    for (int64_t d = 0; d < rank; ++d) {
      const double l = st[1 + d], h = st[1 + rank + d];
      TORCH_CHECK(l >= 0 && h <= sizes[d] - 1, op, ": means[..., ", d,
                  "] must lie in [0, ", sizes[d] - 1, "] (sizes ",
                  shape_string(sizes), "), got values from ", l, " to ", h);
    }
  }

  SampleLayout layout{};
  layout.rank = static_cast<int>(rank);
  layout.samples = (int64_t(1) << rank) + num_local + num_global;
  layout.num_local = num_local;
  layout.seed = static_cast<uint64_t>(seed);
  for (int64_t d = 0; d < rank; ++d) {
    layout.sizes[d] = sizes[d];
    layout.region[d] = region[d];
  }
  return layout;
}

}  // namespace detail
}  // namespace indexgrad

TORCH_LIBRARY_FRAGMENT(indexgrad, m) {
  m.def(
      "sample_tuples(Tensor means, int[] sizes, int num_global, "
      "int num_local, int[] region, int seed) -> Tensor");
}
