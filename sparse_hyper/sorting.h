// What every differentiable sorting method of IndexGrad shares: the module
// interface (so experiments and benchmarks swap methods by a flag), the hard
// sort of evaluation mode, the losses of section 3.3 and sorting metrics.
//
//   std::shared_ptr<SortModuleImpl> sorter = ...;  // SortLayer, NeuralSort, SoftSort
//   SortOutput out = sorter->forward(keys, values);   // keys [batch, n]
//   at::Tensor loss = SortLoss(out, target, {SortLossOptions::Kind::kBce, /*intermediate=*/true});
//
// Keys sort ascending: output[b, 0] carries the value of the smallest key.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace indexgrad {
namespace sparse_hyper {

struct SortOutput {
  // [batch, n, ...]: values sorted by their keys (a relaxation in training
  // mode, the exact sort in evaluation mode).
  at::Tensor output;
  // The outputs of every step, for the intermediate loss. The quicksort:
  // x_1 .. x_L of equation (1), L = log2 N, at the padded length N (the
  // power of two >= n; padding positions hold zeros); other methods:
  // {output}.
  std::vector<at::Tensor> levels;
  // The quicksort's half-permutations (rows, weights) of each level
  // (half_permutation.h), in order; empty for other methods and in
  // evaluation mode.
  std::vector<std::pair<at::Tensor, at::Tensor>> steps;
  // Evaluation mode: [batch, n] int64, output[b, i] = values[b, permutation[b, i]];
  // undefined in training mode.
  at::Tensor permutation;
};

// A differentiable sort of `values` [batch, n, ...] by `keys` [batch, n].
class SortModuleImpl : public torch::nn::Module {
 public:
  explicit SortModuleImpl(const std::string& name) : torch::nn::Module(name) {}
  virtual SortOutput forward(const at::Tensor& keys, const at::Tensor& values) = 0;
};

// Checks keys [batch, n] (finite, float/double, n >= 1) and values
// [batch, n, ...] of the keys' dtype; `op` names the caller in messages.
void CheckSortArgs(const char* op, const at::Tensor& keys, const at::Tensor& values);

// values [batch, n, ...] reordered along n: out[b, i] = values[b, index[b, i]]
// for index [batch, n] int64 (a permutation, e.g. from a stable argsort).
at::Tensor PermuteRows(const at::Tensor& values, const at::Tensor& index);

// The exact ascending sort (stable: equal keys keep their order):
// output and permutation set, levels = {output}.
SortOutput HardSort(const at::Tensor& keys, const at::Tensor& values);

struct SortLossOptions {
  // Binary cross-entropy on outputs clamped to [eps, 1 - eps] (values in
  // [0, 1], e.g. images; the paper's loss) or mean squared error.
  enum class Kind { kBce, kMse };
  Kind kind = Kind::kBce;
  // The paper's intermediate loss (section 3.3): the sum over levels of the
  // loss between x_i and t_i, the target fed back through the transposed
  // half-permutations; false, or a method without levels: final output only.
  bool intermediate = false;
  double eps = 1e-6;
};

// Intermediate targets t_1 .. t_L (as `levels`): t_L = target (padded),
// t_{i-1} = P_i^T t_i with P_i the half-permutation of level i. Computed
// without gradient: targets are constants of the loss.
std::vector<at::Tensor> IntermediateTargets(const SortOutput& out,
                                            const at::Tensor& target);

// target [batch, n, ...]: the values in their true order. Mean over batch
// and elements of each level's loss, summed over levels.
at::Tensor SortLoss(const SortOutput& out, const at::Tensor& target,
                    const SortLossOptions& options = {});

// Metrics of a predicted permutation against the true one, both [batch, n]
// int64 (output position -> input index); `true_ranks` may hold ties (equal
// numbers): a prediction is right where its element's true value matches.
struct SortMetrics {
  double exact = 0;        // share of sequences sorted entirely right
  double elementwise = 0;  // share of positions holding the right value
  double spearman = 0;     // mean Spearman correlation of predicted ranks
                           // (ties: any order of equal numbers scores 1)
};
// true_values [batch, n]: the numbers being sorted (ties allowed);
// predicted [batch, n]: permutation from the model's keys.
SortMetrics ComputeSortMetrics(const at::Tensor& true_values,
                               const at::Tensor& predicted);

}  // namespace sparse_hyper
}  // namespace indexgrad
