// The parametrisation of continuous index tuples shared by every layer that
// learns indices (SparseLayer, HyperLayer and the REINFORCE baseline, so
// that the comparison is fair). Bloem et al. 2018, section 2.1, with the
// mean scaled to size - 1 (the paper's "* size" puts a ceil neighbour out
// of range):
//   mean     sigmoid(raw_mean) * (size_d - 1)
//   variance softplus(raw_sigma + 2) * size_d * sigma_scale + min_sigma
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace indexgrad {
namespace sparse_hyper {

// out_shape followed by in_shape; both non-empty and positive, else an error
// naming `op`.
std::vector<int64_t> IndexSpace(const char* op,
                                const std::vector<int64_t>& out_shape,
                                const std::vector<int64_t>& in_shape);

// x is [batch, *in_shape], else an error naming `op`.
void CheckLayerInput(const char* op, const at::Tensor& x,
                     const std::vector<int64_t>& in_shape);

// raw [..., r], size_minus_one [r] -> means [..., r]
at::Tensor MeansFromRaw(const at::Tensor& raw, const at::Tensor& size_minus_one);

// raw [...] (one per tuple), size [r] -> variances [..., r]
at::Tensor VariancesFromRaw(const at::Tensor& raw, const at::Tensor& size,
                            double sigma_scale, double min_sigma);

// Round half up (the evaluation tuples): [..., r] float -> int64.
at::Tensor RoundHalfUp(const at::Tensor& means);

// Raw means whose means are uniform over the index space: [k, r].
at::Tensor UniformRawMeans(int64_t k, int64_t r);

// The seed of a layer's sampling draw: its options' seed and a stream
// (the training step, or an offset stream of its own), so that layers with
// different seeds never share a stream.
inline int64_t DrawSeed(int64_t layer_seed, int64_t stream) {
  return layer_seed * 1000003 + stream;
}

}  // namespace sparse_hyper
}  // namespace indexgrad
