#include "sparse_hyper/sparse_layer.h"

#include <ATen/ATen.h>

#include <cmath>
#include <set>
#include <vector>

#include "kernels/common/checks.h"
#include "kernels/sparse_contract/sparse_contract.h"
#include "sparse_hyper/parametrisation.h"
#include "sparse_hyper/sampled_sparse.h"

namespace indexgrad {
namespace sparse_hyper {

SparseLayerImpl::SparseLayerImpl(SparseLayerOptions options_)
    : options(std::move(options_)) {
  const char* op = "SparseLayer";
  sizes_ = IndexSpace(op, options.out_shape(), options.in_shape());
  const int64_t r = sizes_.size();
  TORCH_CHECK(options.k() >= 1, op, ": k must be >= 1, got ", options.k());
  sampling_ = SamplingFrom(op, options, r);

  // Means uniform over the index space at initialisation.
  raw_means = register_parameter("raw_means", UniformRawMeans(options.k(), r));
  raw_sigmas = register_parameter("raw_sigmas", at::zeros({options.k()}));
  values = register_parameter("values",
                              at::full({options.k()}, options.init_value()),
                              /*requires_grad=*/options.learn_values());
  step = register_buffer("step", at::zeros({}, at::kLong));
  extra_floor = register_buffer("extra_floor", at::zeros({options.k()}));
  const at::Tensor sizes = at::tensor(sizes_, at::kFloat);
  size_ = register_buffer("size", sizes);
  size_minus_one_ = register_buffer("size_minus_one", sizes - 1);
}

at::Tensor SparseLayerImpl::means() const {
  return MeansFromRaw(raw_means, size_minus_one_);
}

at::Tensor SparseLayerImpl::sigmas() const {
  return VariancesFromRaw(raw_sigmas, size_, options.sigma_scale(),
                          options.min_sigma()) +
         extra_floor.unsqueeze(-1);
}

at::Tensor SparseLayerImpl::rounded_tuples() const {
  at::NoGradGuard no_grad;
  return RoundHalfUp(means());
}

at::Tensor SparseLayerImpl::dense_rounded() const {
  at::NoGradGuard no_grad;
  const at::Tensor tuples = rounded_tuples();  // [k, r]
  int64_t out_numel = 1, in_numel = 1;
  for (int64_t s : options.out_shape()) out_numel *= s;
  for (int64_t s : options.in_shape()) in_numel *= s;
  // W . e_j for every input basis vector e_j gives column j.
  const at::Tensor eye = at::eye(in_numel, values.options())
                             .reshape([&] {
                               std::vector<int64_t> s{in_numel};
                               s.insert(s.end(), options.in_shape().begin(),
                                        options.in_shape().end());
                               return s;
                             }());
  const at::Tensor y = sparse_contract(
      tuples.unsqueeze(0).expand({in_numel, -1, -1}),
      values.detach().unsqueeze(0).expand({in_numel, -1}), options.out_shape(),
      eye);  // [in_numel, *out_shape]
  std::vector<int64_t> shape = options.out_shape();
  shape.insert(shape.end(), options.in_shape().begin(),
               options.in_shape().end());
  return y.reshape({in_numel, out_numel}).t().reshape(shape);
}

int64_t SparseLayerImpl::WidenDoubledTuples(double extra) {
  TORCH_CHECK(extra > 0 && std::isfinite(extra),
              "SparseLayer::WidenDoubledTuples: extra must be > 0 and finite, got ", extra);
  at::NoGradGuard no_grad;
  const at::Tensor tuples = rounded_tuples().to(at::kCPU).contiguous();  // [k, r] int64
  const int64_t k = tuples.size(0), r = tuples.size(1);
  const int64_t* t = tuples.data_ptr<int64_t>();
  const at::Tensor floor_cpu = extra_floor.to(at::kCPU, at::kDouble).contiguous();
  const double* f = floor_cpu.data_ptr<double>();
  std::set<std::vector<int64_t>> seen;
  std::vector<int64_t> widen;
  for (int64_t i = 0; i < k; ++i) {
    const bool doubled = !seen.insert(std::vector<int64_t>(t + i * r, t + (i + 1) * r)).second;
    if (doubled && f[i] == 0) widen.push_back(i);
  }
  if (!widen.empty()) {
    extra_floor.index_fill_(0, at::tensor(widen).to(extra_floor.device()), extra);
  }
  return static_cast<int64_t>(widen.size());
}

void SparseLayerImpl::LowerExtraFloor(double amount) {
  TORCH_CHECK(amount >= 0 && std::isfinite(amount),
              "SparseLayer::LowerExtraFloor: amount must be >= 0 and finite, got ", amount);
  at::NoGradGuard no_grad;
  extra_floor.sub_(amount).clamp_min_(0);
}

void SparseLayerImpl::ClampMeans(double margin) {
  TORCH_CHECK(margin > 0 && margin < 0.5,
              "SparseLayer::ClampMeans: margin must be in (0, 0.5), got ", margin);
  at::NoGradGuard no_grad;
  // sigmoid(b) (h - 1) = h - 1 - m  <=>  b = log((h - 1) / m - 1), and
  // -b for m from the lower edge; dimensions of size 1 have no bound.
  for (size_t d = 0; d < sizes_.size(); ++d) {
    const double h = static_cast<double>(sizes_[d]);
    if (h <= 1) continue;
    at::Tensor raw = raw_means.select(1, static_cast<int64_t>(d));
    const double bound = std::log((h - 1) / margin - 1);
    const at::Tensor outside = raw.abs() > bound;
    if (!outside.any().item<bool>()) continue;
    const at::Tensor m = margin * (1 + 0.5 * at::rand_like(raw));  // [margin, 1.5 margin)
    const at::Tensor inside = at::log((h - 1) / m - 1) * at::sign(raw);
    raw.copy_(at::where(outside, inside, raw));
  }
}

at::Tensor SparseLayerImpl::forward(const at::Tensor& x) {
  CheckLayerInput("SparseLayer", x, options.in_shape());
  const int64_t batch = x.size(0), k = options.k(), r = sizes_.size();
  const at::Tensor x_typed = x.to(values.scalar_type());
  if (!is_training()) {
    return sparse_contract(rounded_tuples().unsqueeze(0),  // one matrix, every row
                           values.unsqueeze(0), options.out_shape(), x_typed);
  }
  const int64_t sets = options.shared_samples() ? 1 : batch;
  const at::Tensor mu = means().unsqueeze(0).expand({sets, k, r});
  const at::Tensor sigma = sigmas().unsqueeze(0).expand({sets, k, r});
  const int64_t seed = DrawSeed(options.seed(), step.item<int64_t>());
  step.add_(1);
  return SampledSparseProduct(x_typed, mu, sigma,
                              values.unsqueeze(0).expand({sets, k}),
                              options.out_shape(), sizes_, sampling_,
                              /*fixed=*/{}, seed);
}

}  // namespace sparse_hyper
}  // namespace indexgrad
