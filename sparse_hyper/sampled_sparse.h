// The sampled sparse product every layer of this package shares (Bloem et
// al. 2018, section 2.1 and appendix A.2): integer tuples sampled around the
// continuous ones (sample_tuples), the values spread over them by the
// paper's proportions (spread_values), one batched contraction
// (sparse_contract: a batch of per-instance sparse matrices, the
// block-diagonal product of the appendix).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace indexgrad {
namespace sparse_hyper {

struct SamplingOptions {
  int64_t num_global = 4;
  int64_t num_local = 4;
  std::vector<int64_t> region;  // per index dimension
  int64_t chunk_size = 0;       // 0: all tuples of a row (the paper)
  double tolerance = 1e-6;      // 0: dense proportions
};

// The sampling settings of a layer's options (SparseLayerOptions,
// HyperLayerOptions), checked: counts >= 0, chunk_size 0 or a divisor of k,
// tolerance in [0, 1), one region entry per index dimension (empty: 4 each).
template <typename LayerOptions>
SamplingOptions SamplingFrom(const char* op, const LayerOptions& o,
                             int64_t rank) {
  TORCH_CHECK(o.num_global() >= 0 && o.num_local() >= 0, op,
              ": num_global and num_local must be >= 0, got ", o.num_global(),
              " and ", o.num_local());
  TORCH_CHECK(o.chunk_size() >= 0 &&
                  (o.chunk_size() == 0 || o.k() % o.chunk_size() == 0),
              op, ": chunk_size must be 0 or divide k = ", o.k(), ", got ",
              o.chunk_size());
  TORCH_CHECK(o.tolerance() >= 0 && o.tolerance() < 1, op,
              ": tolerance must be in [0, 1), got ", o.tolerance());
  TORCH_CHECK(o.sigma_scale() > 0, op, ": sigma_scale must be > 0, got ",
              o.sigma_scale());
  TORCH_CHECK(o.min_sigma() >= 0, op, ": min_sigma must be >= 0, got ",
              o.min_sigma());
  SamplingOptions s;
  s.num_global = o.num_global();
  s.num_local = o.num_local();
  s.region = o.region().empty() ? std::vector<int64_t>(rank, 4) : o.region();
  TORCH_CHECK(static_cast<int64_t>(s.region.size()) == rank, op,
              ": region needs one entry per index dimension (", rank,
              "), got ", s.region.size(), " entries");
  s.chunk_size = o.chunk_size();
  s.tolerance = o.tolerance();
  return s;
}

// Template dimensions (the paper's attention layer fixes all but two): in a
// dimension d with fixed[d] = true every sampled point takes the tuple's
// own (integer) mean, and the variance there is this tiny constant, so a
// tuple gives no mass to points with other fixed coordinates.
constexpr double kFixedDimensionVariance = 1e-12;

// x [batch, *in_shape]; means, sigmas [batch, k, r] (r = len(out_shape) +
// len(in_shape), means in [0, size - 1], integers in fixed dimensions);
// values [batch, k]; fixed: empty or r flags. Returns [batch, *out_shape].
// batch may also be 1 with x of any batch: one sample set (one sparse
// matrix) applied to every row of x.
at::Tensor SampledSparseProduct(const at::Tensor& x, const at::Tensor& means,
                                const at::Tensor& sigmas,
                                const at::Tensor& values,
                                const std::vector<int64_t>& out_shape,
                                const std::vector<int64_t>& sizes,
                                const SamplingOptions& sampling,
                                const std::vector<bool>& fixed, int64_t seed);

}  // namespace sparse_hyper
}  // namespace indexgrad
