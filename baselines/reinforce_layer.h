// ReinforceSparseLayer: the REINFORCE baseline of Bloem et al. 2018, section
// 3.1. It parametrises W like SparseLayer (means, variances, values), but in
// training each batch row samples ONE continuous tuple per nonzero from
// N(mu_i, diag(sigma_i)), rounds it (half up, clamped to the index space)
// and uses the resulting sparse W; the index parameters learn only through
// the score function:
//
//   at::Tensor y = layer->forward(x);                    // [batch, *out]
//   at::Tensor per_row = ((y - x) ^ 2).mean(1);          // [batch]
//   (per_row.mean() + layer->score_surrogate(per_row)).backward();
//
// score_surrogate(L) = mean_b (L_b - baseline) * log p(sample_b), L detached,
// whose gradient is the REINFORCE estimate of d E[L] / d(means, sigmas).
// The baseline is an exponential moving average of the mean loss
// (baseline_decay; on by default; the reference implementation had none,
// which `use_baseline(false)` reproduces). Values get the ordinary
// (pathwise) gradient through y. Evaluation mode uses the rounded means.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <vector>

namespace indexgrad {
namespace baselines {

struct ReinforceSparseLayerOptions {
  ReinforceSparseLayerOptions(std::vector<int64_t> out_shape,
                              std::vector<int64_t> in_shape, int64_t k)
      : out_shape_(std::move(out_shape)),
        in_shape_(std::move(in_shape)),
        k_(k) {}
  TORCH_ARG(std::vector<int64_t>, out_shape);
  TORCH_ARG(std::vector<int64_t>, in_shape);
  TORCH_ARG(int64_t, k);
  TORCH_ARG(double, sigma_scale) = 0.1;
  TORCH_ARG(double, min_sigma) = 0.1;
  TORCH_ARG(bool, learn_values) = true;
  TORCH_ARG(double, init_value) = 1.0;
  TORCH_ARG(bool, use_baseline) = true;
  TORCH_ARG(double, baseline_decay) = 0.9;
};

class ReinforceSparseLayerImpl : public torch::nn::Module {
 public:
  explicit ReinforceSparseLayerImpl(ReinforceSparseLayerOptions options);

  // x [batch, *in_shape] -> [batch, *out_shape]. In training, remembers the
  // log-probability of the sampled tuples for score_surrogate().
  at::Tensor forward(const at::Tensor& x);

  // per_row_loss [batch] (detached inside) -> scalar surrogate; updates the
  // moving-average baseline. Call once per forward.
  at::Tensor score_surrogate(const at::Tensor& per_row_loss);

  const std::vector<int64_t>& sizes() const { return sizes_; }
  at::Tensor means() const;           // [k, r]
  at::Tensor sigmas() const;          // [k, r] variances
  at::Tensor rounded_tuples() const;  // [k, r] int64

  ReinforceSparseLayerOptions options;
  at::Tensor raw_means;   // [k, r]
  at::Tensor raw_sigmas;  // [k]
  at::Tensor values;      // [k]
  at::Tensor baseline;    // [] buffer: moving average of the loss
  at::Tensor baseline_initialised;  // [] buffer (0/1)

 private:
  std::vector<int64_t> sizes_;
  at::Tensor size_, size_minus_one_;
  at::Tensor last_log_prob_;  // [batch]
};
TORCH_MODULE(ReinforceSparseLayer);

}  // namespace baselines
}  // namespace indexgrad
