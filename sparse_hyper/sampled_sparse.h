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

// Template dimensions (the paper's attention layer fixes all but two): in a
// dimension d with fixed[d] = true every sampled point takes the tuple's
// own (integer) mean, and the variance there is this tiny constant, so a
// tuple gives no mass to points with other fixed coordinates.
constexpr double kFixedDimensionVariance = 1e-12;

// x [batch, *in_shape]; means, sigmas [batch, k, r] (r = len(out_shape) +
// len(in_shape), means in [0, size - 1], integers in fixed dimensions);
// values [batch, k]; fixed: empty or r flags. Returns [batch, *out_shape].
at::Tensor SampledSparseProduct(const at::Tensor& x, const at::Tensor& means,
                                const at::Tensor& sigmas,
                                const at::Tensor& values,
                                const std::vector<int64_t>& out_shape,
                                const std::vector<int64_t>& sizes,
                                const SamplingOptions& sampling,
                                const std::vector<bool>& fixed, int64_t seed);

}  // namespace sparse_hyper
}  // namespace indexgrad
