// SparseLayer: the sampled sparse layer of Bloem et al. 2018 (section 2.1,
// Algorithm 1). W is a sparse tensor of k nonzeros whose index tuples are
// continuous, learned parameters; y = W . x contracts W with x.
//
//   SparseLayer layer(SparseLayerOptions(/*out_shape=*/{n}, /*in_shape=*/{n}, /*k=*/n));
//   at::Tensor y = layer->forward(x);   // x [batch, n] -> y [batch, n]
//
// Parametrisation (per tuple i, dimension d, size h_d of that dimension):
//   mean     mu_id    = sigmoid(raw_means[i, d]) * (h_d - 1)
//            (the paper writes * h_d, which puts a ceil neighbour at h_d)
//   variance sigma_id = softplus(raw_sigmas[i] + 2) * h_d * sigma_scale + min_sigma
//                       + extra_floor[i]
//            (the paper's form; min_sigma is its tau, a floor in cells^2;
//            extra_floor, a buffer of zeros, lets a training loop widen
//            single tuples: the identity experiment's rescue)
//   value    v_i      = values[i] (learned unless learn_values = false)
// Training mode samples integer tuples (sample_tuples), distributes each value
// over them by the paper's normalised proportions (spread_values) and
// contracts (sparse_contract). Evaluation mode uses the rounded means (round
// half up), no sampling. A batch row gets its own samples (one set for
// all rows with shared_samples); a step counter
// (a buffer, so checkpoints keep it) seeds each call.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <vector>

#include "sparse_hyper/sampled_sparse.h"

namespace indexgrad {
namespace sparse_hyper {

struct SparseLayerOptions {
  SparseLayerOptions(std::vector<int64_t> out_shape,
                     std::vector<int64_t> in_shape, int64_t k)
      : out_shape_(std::move(out_shape)),
        in_shape_(std::move(in_shape)),
        k_(k) {}
  TORCH_ARG(std::vector<int64_t>, out_shape);
  TORCH_ARG(std::vector<int64_t>, in_shape);
  // Number of continuous index tuples (nonzeros of W).
  TORCH_ARG(int64_t, k);
  TORCH_ARG(int64_t, num_global) = 4;
  TORCH_ARG(int64_t, num_local) = 4;
  // Local sampling box per dimension; empty = 4 in every dimension.
  TORCH_ARG(std::vector<int64_t>, region) = {};
  TORCH_ARG(double, sigma_scale) = 0.1;
  TORCH_ARG(double, min_sigma) = 0.1;
  // Tuples normalised together (0 = all k: the paper's definition).
  TORCH_ARG(int64_t, chunk_size) = 0;
  // Cut-off of the proportions (see spread_values.h); 0 = dense.
  TORCH_ARG(double, tolerance) = 1e-6;
  TORCH_ARG(bool, learn_values) = true;
  // Initial value of every tuple.
  TORCH_ARG(double, init_value) = 1.0;
  TORCH_ARG(int64_t, seed) = 0;
  // One sample set per call, shared by every row of the batch, instead of
  // one per row (the paper's). Possible here because W does not depend on
  // the input; sampling and spreading then cost one row's, the estimate
  // of the gradient has one row's sampling noise.
  TORCH_ARG(bool, shared_samples) = false;
};

class SparseLayerImpl : public torch::nn::Module {
 public:
  explicit SparseLayerImpl(SparseLayerOptions options);

  // x [batch, *in_shape] -> [batch, *out_shape]
  at::Tensor forward(const at::Tensor& x);

  // Index space sizes (out_shape then in_shape): [r].
  const std::vector<int64_t>& sizes() const { return sizes_; }
  at::Tensor means() const;           // [k, r] in [0, h_d - 1]
  at::Tensor sigmas() const;          // [k, r] variances
  at::Tensor rounded_tuples() const;  // [k, r] int64, round half up
  // Dense W [*out_shape, *in_shape] of the rounded tuples (small sizes only).
  at::Tensor dense_rounded() const;

  // Rescue of doubled tuples (a training loop's choice; the identity
  // experiment's --rescue_every): every tuple whose rounded tuple equals an
  // earlier tuple's, and whose extra floor is 0, gets extra_floor = `extra`
  // cells^2. Returns how many. Two tuples on one index see the same
  // gradient and never part; widened, the second one samples and feels the
  // free indices around it.
  int64_t WidenDoubledTuples(double extra);
  // extra_floor -= amount, down to 0 (call once per step to anneal it).
  void LowerExtraFloor(double amount);
  // Keeps every mean at least `margin` cells (0 < margin < 0.5) inside the
  // index range by clamping raw_means (a training loop's projection, after
  // the optimiser's step; the identity experiment's --mean_margin). The
  // sigmoid flattens at the edges: a mean pushed onto the last cell can
  // take its raw value to 20 or more, where the gradient is ~1e-9 of the
  // middle's and the tuple stays there however its cell is crowded. A mean
  // past the margin goes to a random point between margin and 1.5 margin
  // from the edge (the global generator's uniform draws): two tuples
  // pressed against one edge must not coincide exactly, or they receive
  // the same gradients and move together for good (seen at n = 512: pairs
  // stuck half-way between the first two cells). The rounded tuples do
  // not change.
  void ClampMeans(double margin);

  SparseLayerOptions options;
  at::Tensor raw_means;   // [k, r]
  at::Tensor raw_sigmas;  // [k]
  at::Tensor values;      // [k]
  at::Tensor step;        // [] int64 buffer: calls so far (sampling seed)
  at::Tensor extra_floor; // [k] buffer, cells^2, added to every variance of tuple i

 private:
  std::vector<int64_t> sizes_;
  SamplingOptions sampling_;
  at::Tensor size_minus_one_;  // [r] buffer, float
  at::Tensor size_;            // [r] buffer, float
};
TORCH_MODULE(SparseLayer);

}  // namespace sparse_hyper
}  // namespace indexgrad
