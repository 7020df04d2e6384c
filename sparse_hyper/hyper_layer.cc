#include "sparse_hyper/hyper_layer.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/linear.h>

#include "kernels/common/checks.h"
#include "kernels/sparse_contract/sparse_contract.h"
#include "sparse_hyper/parametrisation.h"
#include "sparse_hyper/sampled_sparse.h"

namespace indexgrad {
namespace sparse_hyper {

HyperLayerImpl::HyperLayerImpl(HyperLayerOptions options_)
    : options(std::move(options_)) {
  const char* op = "HyperLayer";
  sizes_ = IndexSpace(op, options.out_shape(), options.in_shape());
  int64_t in_numel = 1;
  for (int64_t s : options.in_shape()) in_numel *= s;
  const int64_t r = sizes_.size(), k = options.k();
  TORCH_CHECK(k >= 1, op, ": k must be >= 1, got ", k);
  TORCH_CHECK(options.hidden() >= 1, op, ": hidden must be >= 1, got ",
              options.hidden());
  sampling_ = SamplingFrom(op, options, r);
  fixed_.assign(r, false);
  for (int64_t d : options.fixed_dims()) {
    TORCH_CHECK(d >= 0 && d < r, op, ": fixed_dims entries must be in [0, ", r,
                "), got ", d);
    fixed_[d] = true;
  }
  at::Tensor tmpl = at::zeros({k, r});
  if (!options.fixed_dims().empty()) {
    const at::Tensor& t = options.template_tuples();
    TORCH_CHECK(t.defined() && t.dim() == 2 && t.size(0) == k && t.size(1) == r,
                op, ": template_tuples must be [k, r] = [", k, ", ", r,
                "] when fixed_dims is set, got ",
                t.defined() ? shape_string(t.sizes()) : "undefined");
    check_long(op, "template_tuples", t);
    for (int64_t d : options.fixed_dims()) {
      check_tuples_in_range(op, "template_tuples (fixed dimension)",
                            t.select(1, d).unsqueeze(1), {sizes_[d]});
    }
    tmpl = t.to(at::kFloat);
  }
  for (int64_t d = 0; d < r; ++d) {
    if (!fixed_[d]) learned_dims_.push_back(d);
  }
  const int64_t per_tuple = static_cast<int64_t>(learned_dims_.size()) + 2;
  source = register_module(
      "source", torch::nn::Sequential(
                    torch::nn::Linear(in_numel, options.hidden()),
                    torch::nn::ReLU(),
                    torch::nn::Linear(options.hidden(), k * per_tuple)));
  step = register_buffer("step", at::zeros({}, at::kLong));
  template_ = register_buffer("template", tmpl);
  const at::Tensor sizes = at::tensor(sizes_, at::kFloat);
  size_ = register_buffer("size", sizes);
  size_minus_one_ = register_buffer("size_minus_one", sizes - 1);
}

HyperLayerImpl::Parameters HyperLayerImpl::parameters_for(const at::Tensor& x) {
  CheckLayerInput("HyperLayer", x, options.in_shape());
  const int64_t batch = x.size(0), k = options.k(), r = sizes_.size();
  const int64_t learned = learned_dims_.size();
  const at::Tensor typed = x.to(size_.scalar_type());
  // [batch, k, learned + 2]
  const at::Tensor raw = source->forward(typed.reshape({batch, -1}))
                             .view({batch, k, learned + 2});
  const at::Tensor learned_idx =
      at::tensor(learned_dims_, at::kLong).to(x.device());
  // Template coordinates everywhere, learned means in the learned dims.
  at::Tensor means = template_.unsqueeze(0).expand({batch, k, r});
  if (learned > 0) {
    const at::Tensor mu = MeansFromRaw(
        raw.slice(2, 0, learned), size_minus_one_.index_select(0, learned_idx));
    means = means.index_copy(2, learned_idx, mu);
  }
  Parameters p;
  p.means = means;
  p.sigmas = VariancesFromRaw(raw.select(2, learned), size_,
                              options.sigma_scale(), options.min_sigma());
  p.values = raw.select(2, learned + 1);
  return p;
}

at::Tensor HyperLayerImpl::forward(const at::Tensor& x) {
  const Parameters p = parameters_for(x);
  if (!is_training()) {
    return sparse_contract(RoundHalfUp(p.means), p.values, options.out_shape(),
                           x.to(p.values.scalar_type()));
  }
  const int64_t seed = DrawSeed(options.seed(), step.item<int64_t>());
  step.add_(1);
  return SampledSparseProduct(x, p.means, p.sigmas, p.values,
                              options.out_shape(), sizes_, sampling_, fixed_,
                              seed);
}

}  // namespace sparse_hyper
}  // namespace indexgrad
