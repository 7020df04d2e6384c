#include "baselines/relaxed_sort.h"

#include <cmath>

#include "kernels/common/checks.h"

namespace indexgrad {
namespace baselines {
namespace {

void CheckTau(const char* op, double tau) {
  TORCH_CHECK(std::isfinite(tau) && tau > 0, op,
              ": tau (temperature) must be a positive finite number, got ", tau);
}

void CheckKeys(const char* op, const at::Tensor& keys) {
  check_dim(op, "keys", keys, 2);
  check_floating(op, "keys", keys);
}

}  // namespace

at::Tensor NeuralSortMatrix(const at::Tensor& keys, double tau) {
  CheckKeys("NeuralSortMatrix", keys);
  CheckTau("NeuralSortMatrix", tau);
  const int64_t n = keys.size(1);
  const at::Tensor s = -keys.unsqueeze(2);                         // [b, n, 1], descending scores
  const at::Tensor a1 = (s - s.transpose(1, 2)).abs().sum(2);      // [b, n]: (A_s 1)_j
  const at::Tensor scale = n + 1 - 2 * at::arange(1, n + 1, keys.options());  // [n]
  // logits[b, i, j] = (n + 1 - 2i) s_j - (A_s 1)_j
  const at::Tensor logits = scale.view({1, n, 1}) * s.transpose(1, 2) - a1.unsqueeze(1);
  return at::softmax(logits / tau, 2);
}

at::Tensor SoftSortMatrix(const at::Tensor& keys, double tau) {
  CheckKeys("SoftSortMatrix", keys);
  CheckTau("SoftSortMatrix", tau);
  const at::Tensor sorted = std::get<0>(keys.sort(1));  // [b, n] ascending
  return at::softmax(-(sorted.unsqueeze(2) - keys.unsqueeze(1)).abs() / tau, 2);
}

at::Tensor HardRows(const at::Tensor& p) {
  check_dim("HardRows", "p", p, 3);
  return at::zeros_like(p).scatter_(2, p.argmax(2, /*keepdim=*/true), 1.0);
}

RelaxedSortImpl::RelaxedSortImpl(Kind kind_, double tau_)
    : SortModuleImpl(kind_ == Kind::kNeuralSort ? "NeuralSort" : "SoftSort"),
      kind(kind_),
      tau(tau_) {
  CheckTau(name().c_str(), tau);
}

sparse_hyper::SortOutput RelaxedSortImpl::forward(const at::Tensor& keys,
                                                  const at::Tensor& values) {
  sparse_hyper::CheckSortArgs(name().c_str(), keys, values);
  if (!is_training()) return sparse_hyper::HardSort(keys, values);
  const at::Tensor p = kind == Kind::kNeuralSort ? NeuralSortMatrix(keys, tau)
                                                 : SoftSortMatrix(keys, tau);
  const int64_t batch = keys.size(0), n = keys.size(1);
  sparse_hyper::SortOutput out;
  out.output = at::bmm(p, values.reshape({batch, n, -1})).view(values.sizes());
  out.levels = {out.output};
  return out;
}

}  // namespace baselines
}  // namespace indexgrad
