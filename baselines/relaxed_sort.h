// Deterministic relaxed sorts to compare the differentiable quicksort with,
// written from their papers' formulas, behind the same interface as
// sparse_hyper::SortLayer (sparse_hyper/sorting.h), ascending order.
//
// NeuralSort (Grover, Wang, Zweig, Ermon 2019, eq. 5): for scores s
// (descending in the paper; we pass s = -keys for ascending),
//   P[i, :] = softmax(((n + 1 - 2i) s - A_s 1) / tau),  A_s[j, k] = |s_j - s_k|,
// i = 1..n. Memory n^2 per sequence.
// SoftSort (Prillo, Eisenschlos 2020, eq. 3 with d = |.|):
//   P[i, :] = softmax(-|sort(keys)_i - keys| / tau)   (sort ascending).
// Training mode: output = P values (values flattened behind n). Evaluation
// mode: the exact stable sort (sparse_hyper::HardSort).
//
//   NeuralSort sorter(/*tau=*/1.0);
//   SortOutput out = sorter->forward(keys, values);
#pragma once

#include <torch/nn/pimpl.h>

#include "sparse_hyper/sorting.h"

namespace indexgrad {
namespace baselines {

// The relaxed permutation matrices, [batch, n, n]; keys [batch, n].
at::Tensor NeuralSortMatrix(const at::Tensor& keys, double tau);
at::Tensor SoftSortMatrix(const at::Tensor& keys, double tau);

// P [batch, n, n] row-stochastic -> its hard form: one-hot of each row's
// argmax (a permutation matrix when the keys are distinct).
at::Tensor HardRows(const at::Tensor& p);

class RelaxedSortImpl : public sparse_hyper::SortModuleImpl {
 public:
  enum class Kind { kNeuralSort, kSoftSort };
  RelaxedSortImpl(Kind kind, double tau);
  sparse_hyper::SortOutput forward(const at::Tensor& keys,
                                   const at::Tensor& values) override;
  Kind kind;
  double tau;
};

class NeuralSortImpl : public RelaxedSortImpl {
 public:
  explicit NeuralSortImpl(double tau = 1.0) : RelaxedSortImpl(Kind::kNeuralSort, tau) {}
};
TORCH_MODULE(NeuralSort);

class SoftSortImpl : public RelaxedSortImpl {
 public:
  explicit SoftSortImpl(double tau = 1.0) : RelaxedSortImpl(Kind::kSoftSort, tau) {}
};
TORCH_MODULE(SoftSort);

}  // namespace baselines
}  // namespace indexgrad
