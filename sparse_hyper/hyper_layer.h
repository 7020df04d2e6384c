// HyperLayer: the adaptive sparse hyperlayer of Bloem et al. 2018 (section
// 2): a source network maps each input to its own continuous index tuples,
// variances and values, so every instance gets its own sparse W; the batch
// is one batched (block-diagonal) sparse product.
//
//   HyperLayer layer(HyperLayerOptions({n_out}, {n_in}, /*k=*/16).hidden(64));
//   at::Tensor y = layer->forward(x);   // [batch, n_in] -> [batch, n_out]
//
// Templates (the paper's attention layer): `fixed_dims` lists index
// dimensions that are not learned; `template_tuples` [k, r] gives each
// tuple's integer coordinates there (other entries are ignored). Sampled
// points keep those coordinates, and a tuple gives no mass to points with
// other fixed coordinates.
//
// The source network is an MLP on the flattened input:
// in_numel -> hidden -> ReLU -> k * (learned dims + 2) (raw means, raw
// variance, value per tuple), parametrised as in SparseLayer.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <vector>

#include "sparse_hyper/sampled_sparse.h"

namespace indexgrad {
namespace sparse_hyper {

struct HyperLayerOptions {
  HyperLayerOptions(std::vector<int64_t> out_shape,
                    std::vector<int64_t> in_shape, int64_t k)
      : out_shape_(std::move(out_shape)),
        in_shape_(std::move(in_shape)),
        k_(k) {}
  TORCH_ARG(std::vector<int64_t>, out_shape);
  TORCH_ARG(std::vector<int64_t>, in_shape);
  TORCH_ARG(int64_t, k);
  TORCH_ARG(int64_t, hidden) = 64;
  TORCH_ARG(int64_t, num_global) = 4;
  TORCH_ARG(int64_t, num_local) = 4;
  TORCH_ARG(std::vector<int64_t>, region) = {};  // empty: 4 per dimension
  TORCH_ARG(double, sigma_scale) = 0.1;
  TORCH_ARG(double, min_sigma) = 0.1;
  TORCH_ARG(int64_t, chunk_size) = 0;
  TORCH_ARG(double, tolerance) = 1e-6;
  TORCH_ARG(std::vector<int64_t>, fixed_dims) = {};
  TORCH_ARG(at::Tensor, template_tuples) = {};  // [k, r] int64
  TORCH_ARG(int64_t, seed) = 0;
};

class HyperLayerImpl : public torch::nn::Module {
 public:
  explicit HyperLayerImpl(HyperLayerOptions options);

  // x [batch, *in_shape] -> [batch, *out_shape]
  at::Tensor forward(const at::Tensor& x);

  struct Parameters {
    at::Tensor means;   // [batch, k, r]
    at::Tensor sigmas;  // [batch, k, r] variances
    at::Tensor values;  // [batch, k]
  };
  // The sparse parameters the source network gives for x.
  Parameters parameters_for(const at::Tensor& x);

  const std::vector<int64_t>& sizes() const { return sizes_; }

  HyperLayerOptions options;
  torch::nn::Sequential source{nullptr};
  at::Tensor step;  // [] int64 buffer (sampling seed)

 private:
  std::vector<int64_t> sizes_, learned_dims_;
  SamplingOptions sampling_;
  std::vector<bool> fixed_;
  at::Tensor template_;        // [k, r] float buffer
  at::Tensor size_, size_minus_one_;  // [r] buffers
};
TORCH_MODULE(HyperLayer);

}  // namespace sparse_hyper
}  // namespace indexgrad
