// CPU kernel of sample_tuples: parallel over (batch, tuple).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "kernels/common/checks.h"
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
  const char* op = "sample_tuples";
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
  const at::Tensor means_c = means.contiguous();
  if (means_c.numel() > 0) {
    const at::Tensor flat = means_c.reshape({-1, rank});
    TORCH_CHECK(!at::isnan(flat).any().item<bool>(), op,
                ": means contain NaN");
    const at::Tensor lo = std::get<0>(flat.min(0)).to(at::kDouble);
    const at::Tensor hi = std::get<0>(flat.max(0)).to(at::kDouble);
    for (int64_t d = 0; d < rank; ++d) {
      const double l = lo[d].item<double>(), h = hi[d].item<double>();
      TORCH_CHECK(l >= 0 && h <= sizes[d] - 1, op, ": means[..., ", d,
                  "] must lie in [0, ", sizes[d] - 1, "] (sizes ",
                  shape_string(sizes), "), got values from ", l, " to ", h);
    }
  }

  const int64_t batch = means.size(0), k = means.size(1);
  const int64_t samples = (int64_t(1) << rank) + num_local + num_global;
  at::Tensor out = at::empty({batch, k, samples, rank},
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
