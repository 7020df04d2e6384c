#include "sparse_hyper/sorting.h"

#include <torch/autograd.h>

#include "kernels/common/checks.h"
#include "kernels/half_permutation/half_permutation.h"

namespace indexgrad {
namespace sparse_hyper {

void CheckSortArgs(const char* op, const at::Tensor& keys, const at::Tensor& values) {
  check_dim(op, "keys", keys, 2);
  check_floating(op, "keys", keys);
  TORCH_CHECK(keys.size(1) >= 1, op, ": keys must hold n >= 1 keys per row, got shape ",
              shape_string(keys.sizes()));
  TORCH_CHECK(values.dim() >= 2 && values.size(0) == keys.size(0) &&
                  values.size(1) == keys.size(1),
              op, ": values must be [batch, n, ...] with batch = ", keys.size(0),
              " and n = ", keys.size(1), " (from keys), got shape ",
              shape_string(values.sizes()));
  check_same_dtype(op, "keys", keys, "values", values);
  check_same_device(op, "keys", keys, "values", values);
  if (keys.numel() > 0) {
    TORCH_CHECK(at::isfinite(keys).all().item<bool>(), op,
                ": keys contain NaN or infinity");
  }
}

namespace {

at::Tensor PadRows(const at::Tensor& t, int64_t length) {
  if (t.size(1) == length) return t;
  std::vector<int64_t> shape = t.sizes().vec();
  shape[1] = length - t.size(1);
  return at::cat({t, at::zeros(shape, t.options())}, 1);
}

}  // namespace

at::Tensor PermuteRows(const at::Tensor& values, const at::Tensor& index) {
  std::vector<int64_t> shape(values.dim(), 1);
  shape[0] = index.size(0);
  shape[1] = index.size(1);
  return values.gather(1, index.view(shape).expand(values.sizes()));
}

SortOutput HardSort(const at::Tensor& keys, const at::Tensor& values) {
  CheckSortArgs("HardSort", keys, values);
  SortOutput out;
  out.permutation = std::get<1>(keys.sort(/*stable=*/true, /*dim=*/1, /*descending=*/false));
  out.output = PermuteRows(values, out.permutation);
  out.levels = {out.output};
  return out;
}

std::vector<at::Tensor> IntermediateTargets(const SortOutput& out,
                                            const at::Tensor& target) {
  TORCH_CHECK(out.steps.size() == out.levels.size(),
              "IntermediateTargets: needs one half-permutation per level, got ",
              out.steps.size(), " steps and ", out.levels.size(), " levels");
  TORCH_CHECK(!out.levels.empty(), "IntermediateTargets: no levels");
  torch::NoGradGuard no_grad;
  const int64_t length = out.levels.back().size(1);
  std::vector<at::Tensor> targets(out.levels.size());
  targets.back() = PadRows(target, length);
  // t_{i-1} = P_i^T t_i: level i's own transpose, for every level.
  for (size_t i = out.levels.size() - 1; i > 0; --i) {
    const auto& [rows, weights] = out.steps[i];
    targets[i - 1] = half_permutation_apply(rows, weights, targets[i], /*transpose=*/true);
  }
  return targets;
}

at::Tensor SortLoss(const SortOutput& out, const at::Tensor& target,
                    const SortLossOptions& options) {
  TORCH_CHECK(out.output.defined(), "SortLoss: the sort output is empty");
  TORCH_CHECK(target.sizes() == out.output.sizes(), "SortLoss: target must have the shape of "
              "the output ", shape_string(out.output.sizes()), ", got ",
              shape_string(target.sizes()));
  TORCH_CHECK(options.eps > 0 && options.eps < 0.5, "SortLoss: eps must be in (0, 0.5), got ",
              options.eps);
  auto level_loss = [&](const at::Tensor& x, const at::Tensor& t) {
    if (options.kind == SortLossOptions::Kind::kMse) return (x - t).pow(2).mean();
    const at::Tensor p = x.clamp(options.eps, 1 - options.eps);
    return -(t * p.log() + (1 - t) * (1 - p).log()).mean();
  };
  if (!options.intermediate || out.steps.empty()) return level_loss(out.output, target);
  const std::vector<at::Tensor> targets = IntermediateTargets(out, target);
  at::Tensor total = level_loss(out.levels[0], targets[0]);
  for (size_t i = 1; i < targets.size(); ++i) total = total + level_loss(out.levels[i], targets[i]);
  return total;
}

SortMetrics ComputeSortMetrics(const at::Tensor& true_values, const at::Tensor& predicted) {
  const char* op = "ComputeSortMetrics";
  check_dim(op, "true_values", true_values, 2);
  check_dim(op, "predicted", predicted, 2);
  check_long(op, "predicted", predicted);
  TORCH_CHECK(true_values.sizes() == predicted.sizes(), op,
              ": true_values and predicted must have the same shape, got ",
              shape_string(true_values.sizes()), " and ", shape_string(predicted.sizes()));
  SortMetrics m;
  const int64_t batch = predicted.size(0), n = predicted.size(1);
  if (batch == 0 || n == 0) return m;
  const at::Tensor v = true_values.to(at::kDouble).cpu();
  const at::Tensor p = predicted.cpu();
  const at::Tensor sorted = std::get<0>(v.sort(1));
  const at::Tensor right = v.gather(1, p).eq(sorted);  // [batch, n]
  m.exact = right.all(1).to(at::kDouble).mean().item<double>();
  m.elementwise = right.to(at::kDouble).mean().item<double>();
  // Spearman: 1 - 6 sum d^2 / (n (n^2 - 1)), d = predicted position minus
  // true rank; the true rank of a value shared by several elements is the
  // one of its tied ranks nearest the predicted position, so any order of
  // equal numbers scores 1.
  if (n == 1) {
    m.spearman = 1;
    return m;
  }
  const at::Tensor shown = v.gather(1, p);                          // [batch, n]
  const at::Tensor lo = v.unsqueeze(1).lt(shown.unsqueeze(2)).sum(2).to(at::kDouble);
  const at::Tensor hi = v.unsqueeze(1).le(shown.unsqueeze(2)).sum(2).to(at::kDouble) - 1;
  const at::Tensor position = at::arange(n, at::kDouble).expand({batch, n});
  const at::Tensor d = position - at::min(at::max(position, lo), hi);
  m.spearman = (1 - 6 * d.pow(2).sum(1) / double(n * (n * n - 1))).mean().item<double>();
  return m;
}

}  // namespace sparse_hyper
}  // namespace indexgrad
