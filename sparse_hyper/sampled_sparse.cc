#include "sparse_hyper/sampled_sparse.h"

#include "kernels/sample_tuples/sample_tuples.h"
#include "kernels/sparse_contract/sparse_contract.h"
#include "kernels/spread_values/spread_values.h"

namespace indexgrad {
namespace sparse_hyper {

at::Tensor SampledSparseProduct(const at::Tensor& x, const at::Tensor& means,
                                const at::Tensor& sigmas,
                                const at::Tensor& values,
                                const std::vector<int64_t>& out_shape,
                                const std::vector<int64_t>& sizes,
                                const SamplingOptions& sampling,
                                const std::vector<bool>& fixed, int64_t seed) {
  const int64_t batch = means.size(0), k = means.size(1), r = means.size(2);
  TORCH_CHECK(batch == x.size(0) || batch == 1,
              "SampledSparseProduct: means need x's batch (", x.size(0),
              ") or 1 (one sample set for every row), got ", batch);
  TORCH_CHECK(fixed.empty() || static_cast<int64_t>(fixed.size()) == r,
              "SampledSparseProduct: fixed needs one flag per index dimension (",
              r, "), got ", fixed.size());
  at::Tensor points =  // [batch, k, samples, r]
      sample_tuples(means.detach(), sizes, sampling.num_global,
                    sampling.num_local, sampling.region, seed);
  at::Tensor sigma = sigmas;
  if (!fixed.empty()) {
    std::vector<int64_t> dims;
    for (int64_t d = 0; d < r; ++d) {
      if (fixed[d]) dims.push_back(d);
    }
    if (!dims.empty()) {
      const at::Tensor idx = at::tensor(dims, at::kLong).to(means.device());
      // [batch, k, 1, f] -> every sample of a tuple keeps its fixed coordinates.
      const at::Tensor own = at::floor(means.detach().index_select(2, idx) + 0.5)
                                 .to(at::kLong)
                                 .unsqueeze(2)
                                 .expand({batch, k, points.size(2), -1});
      points = points.index_copy(3, idx, own.contiguous());
      at::Tensor mask = at::zeros({r}, sigmas.options());
      mask.index_fill_(0, idx, 1.0);
      sigma = sigmas * (1 - mask) + mask * kFixedDimensionVariance;
    }
  }
  const int64_t samples = points.size(2);
  const at::Tensor point_values =  // [batch, k, samples]
      spread_values(points, means, sigma, values, sampling.chunk_size,
                    sampling.tolerance);
  // Batch 1: one sparse matrix for every row of x (sparse_contract applies
  // it to each row without copies and sums the rows' value gradients).
  return sparse_contract(points.view({batch, k * samples, r}),
                         point_values.view({batch, k * samples}), out_shape,
                         x.to(values.scalar_type()));
}

}  // namespace sparse_hyper
}  // namespace indexgrad
