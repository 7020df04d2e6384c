// CPU kernel of sample_tuples: parallel over (batch, tuple).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "kernels/sample_tuples/sample_tuples.h"
#include "kernels/sample_tuples/sample_tuples_math.h"

namespace indexgrad {
namespace {

// sample_component (sample_tuples_math.h) for tuples [t0, t1), phase by
// phase: each tuple's neighbours, box starts and widths computed once per
// component, not once per sample, and no branch on the sample's phase.
template <typename scalar_t>
void sample_range(const scalar_t* mean_p, int rank, const int64_t* sizes,
                  const int64_t* region, int64_t num_local, int64_t num_global,
                  int64_t seed, int64_t t0, int64_t t1, int64_t* out_p) {
  const int64_t num_neighbours = int64_t(1) << rank;
  const int64_t samples = num_neighbours + num_local + num_global;
  int64_t lo[kMaxTupleRank][2], box[kMaxTupleRank], width[kMaxTupleRank];
  for (int64_t t = t0; t < t1; ++t) {
    const scalar_t* mu = mean_p + t * rank;
    int64_t* o = out_p + t * samples * rank;  // [samples, rank]
    const uint64_t key =
        stream_key(static_cast<uint64_t>(seed), static_cast<uint64_t>(t));
    for (int d = 0; d < rank; ++d) {
      const double m = static_cast<double>(mu[d]);
      lo[d][0] = neighbour(m, false, sizes[d]);
      lo[d][1] = neighbour(m, true, sizes[d]);
      width[d] = region[d] < sizes[d] ? region[d] : sizes[d];
      box[d] = local_box_start(m, width[d], sizes[d]);
    }
    for (int64_t s = 0; s < num_neighbours; ++s) {
      for (int d = 0; d < rank; ++d) {
        o[s * rank + d] = lo[d][(s >> (rank - 1 - d)) & 1];
      }
    }
    for (int64_t s = num_neighbours; s < num_neighbours + num_local; ++s) {
      for (int d = 0; d < rank; ++d) {
        const uint64_t counter = static_cast<uint64_t>(s) * rank + d;
        o[s * rank + d] = box[d] + below_from_bits(mix64(key + counter), width[d]);
      }
    }
    for (int64_t s = num_neighbours + num_local; s < samples; ++s) {
      for (int d = 0; d < rank; ++d) {
        const uint64_t counter = static_cast<uint64_t>(s) * rank + d;
        o[s * rank + d] = below_from_bits(mix64(key + counter), sizes[d]);
      }
    }
  }
}

at::Tensor sample_tuples_cpu(const at::Tensor& means, at::IntArrayRef sizes,
                             int64_t num_global, int64_t num_local,
                             at::IntArrayRef region, int64_t seed) {
  const SampleLayout layout = detail::check_sample_tuples_args(
      "sample_tuples", means, sizes, num_global, num_local, region, seed);
  const int64_t rank = layout.rank;
  const at::Tensor means_c = means.contiguous();
  const int64_t batch = means.size(0), k = means.size(1);
  at::Tensor out = at::empty({batch, k, layout.samples, rank},
                             means.options().dtype(at::kLong));
  if (out.numel() == 0) return out;
  int64_t* out_p = out.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "sample_tuples_cpu", [&] {
    const scalar_t* mean_p = means_c.data_ptr<scalar_t>();
    at::parallel_for(0, batch * k, 64, [&](int64_t t0, int64_t t1) {
      sample_range(mean_p, static_cast<int>(rank), sizes.data(), region.data(),
                   num_local, num_global, seed, t0, t1, out_p);
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(indexgrad, CPU, m) {
  m.impl("sample_tuples", TORCH_FN(sample_tuples_cpu));
}

}  // namespace indexgrad
