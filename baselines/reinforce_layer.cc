#include "baselines/reinforce_layer.h"

#include <ATen/ATen.h>

#include "baselines/moving_baseline.h"
#include "kernels/common/checks.h"
#include "kernels/sparse_contract/sparse_contract.h"
#include "sparse_hyper/parametrisation.h"

namespace indexgrad {
namespace baselines {

ReinforceSparseLayerImpl::ReinforceSparseLayerImpl(
    ReinforceSparseLayerOptions options_)
    : options(std::move(options_)) {
  const char* op = "ReinforceSparseLayer";
  sizes_ = sparse_hyper::IndexSpace(op, options.out_shape(), options.in_shape());
  TORCH_CHECK(options.k() >= 1, op, ": k must be >= 1, got ", options.k());
  TORCH_CHECK(options.sigma_scale() > 0, op, ": sigma_scale must be > 0, got ",
              options.sigma_scale());
  TORCH_CHECK(options.baseline_decay() >= 0 && options.baseline_decay() < 1,
              op, ": baseline_decay must be in [0, 1), got ",
              options.baseline_decay());
  const int64_t r = sizes_.size();
  raw_means = register_parameter("raw_means",
                                 sparse_hyper::UniformRawMeans(options.k(), r));
  raw_sigmas = register_parameter("raw_sigmas", at::zeros({options.k()}));
  values = register_parameter("values",
                              at::full({options.k()}, options.init_value()),
                              options.learn_values());
  baseline = register_buffer("baseline", at::zeros({}));
  baseline_initialised = register_buffer("baseline_initialised", at::zeros({}));
  const at::Tensor sizes = at::tensor(sizes_, at::kFloat);
  size_ = register_buffer("size", sizes);
  size_minus_one_ = register_buffer("size_minus_one", sizes - 1);
}

at::Tensor ReinforceSparseLayerImpl::means() const {
  return sparse_hyper::MeansFromRaw(raw_means, size_minus_one_);
}

at::Tensor ReinforceSparseLayerImpl::sigmas() const {
  return sparse_hyper::VariancesFromRaw(raw_sigmas, size_, options.sigma_scale(),
                                        options.min_sigma());
}

at::Tensor ReinforceSparseLayerImpl::rounded_tuples() const {
  at::NoGradGuard no_grad;
  return sparse_hyper::RoundHalfUp(means());
}

at::Tensor ReinforceSparseLayerImpl::forward(const at::Tensor& x) {
  sparse_hyper::CheckLayerInput("ReinforceSparseLayer", x, options.in_shape());
  const int64_t batch = x.size(0), k = options.k(), r = sizes_.size();
  const at::Tensor x_typed = x.to(values.scalar_type());
  if (!is_training()) {  // one matrix for every row
    return sparse_contract(rounded_tuples().unsqueeze(0), values.unsqueeze(0),
                           options.out_shape(), x_typed);
  }
  const at::Tensor v = values.unsqueeze(0).expand({batch, k});
  const at::Tensor mu = means();      // [k, r]
  const at::Tensor sigma = sigmas();  // [k, r]
  at::Tensor sample;                  // [batch, k, r] continuous
  {
    at::NoGradGuard no_grad;
    sample = mu.unsqueeze(0) +
             at::randn({batch, k, r}, mu.options()) * sigma.sqrt().unsqueeze(0);
  }
  // log N(sample | mu, diag(sigma)) summed over tuples and dimensions: [batch]
  last_log_prob_ = (-0.5 * (sample - mu).pow(2) / sigma - 0.5 * at::log(sigma))
                       .sum({1, 2});
  const at::Tensor tuples = sparse_hyper::RoundHalfUp(
      sample.clamp_min(0).minimum(size_minus_one_.to(sample.scalar_type())));
  return sparse_contract(tuples, v, options.out_shape(), x_typed);
}

at::Tensor ReinforceSparseLayerImpl::score_surrogate(
    const at::Tensor& per_row_loss) {
  TORCH_CHECK(last_log_prob_.defined(),
              "ReinforceSparseLayer::score_surrogate: call forward() in "
              "training mode first");
  TORCH_CHECK(per_row_loss.dim() == 1 &&
                  per_row_loss.size(0) == last_log_prob_.size(0),
              "ReinforceSparseLayer::score_surrogate: per_row_loss must be [",
              last_log_prob_.size(0), "], got ",
              shape_string(per_row_loss.sizes()));
  const at::Tensor loss = per_row_loss.detach().to(last_log_prob_.scalar_type());
  const double b =
      options.use_baseline()
          ? UpdateMovingBaseline(baseline, baseline_initialised,
                                 loss.mean().item<double>(),
                                 options.baseline_decay())
          : 0.0;
  at::Tensor surrogate = ((loss - b) * last_log_prob_).mean();
  last_log_prob_ = at::Tensor();
  return surrogate;
}

}  // namespace baselines
}  // namespace indexgrad
