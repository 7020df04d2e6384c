// One run of the MNIST sorting experiment (//experiments:sort_mnist): a key
// network trained through a differentiable sort (the quicksort SortLayer,
// NeuralSort or SoftSort), validated during training and tested at the end
// on fixed sequences. Shared by the experiment's main and its test.
//
//   SortRunConfig c; c.method = "quicksort"; c.n = 4; ...
//   absl::StatusOr<SortRunResult> r = RunSortMnist(c, train_pool, val, test);
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparse_hyper/sort_task.h"
#include "sparse_hyper/sorting.h"

namespace indexgrad {
namespace experiments {

struct SortRunConfig {
  std::string method = "quicksort";  // quicksort | neuralsort | softsort
  int64_t n = 4;
  int64_t digits = 3;
  int64_t seed = 0;
  int64_t steps = 500;
  int64_t batch = 32;
  double lr = 1e-3;
  int64_t eval_every = 100;
  // Quicksort: samples per bucket (a), C, the paper's intermediate loss.
  int64_t num_samples = 2;
  double temperature = 10.0;
  bool intermediate = true;
  double tau = 1.0;  // NeuralSort / SoftSort temperature
  bool paper_keynet = false;
  bool resume = true;
  std::string run_dir;  // <run_dir>/<name>.csv, .ckpt
  c10::Device device = c10::kCPU;  // where the key network and sorter run
};

struct SortRunResult {
  std::string name;  // <method>_n<n>_s<seed>
  SortRunConfig config;
  sparse_hyper::SortMetrics validation, test;
  int64_t steps_done = 0;
  double seconds = 0;
  double final_loss = 0;
};

// "quicksort", "neuralsort" or "softsort" -> a sort module; an error names
// the method otherwise.
absl::StatusOr<std::shared_ptr<sparse_hyper::SortModuleImpl>> MakeSorter(
    const SortRunConfig& config);

absl::StatusOr<SortRunResult> RunSortMnist(const SortRunConfig& config,
                                           const sparse_hyper::DigitPool& train,
                                           const sparse_hyper::SortBatch& validation,
                                           const sparse_hyper::SortBatch& test);

// Metrics of a key network on fixed sequences (evaluation mode, batches of
// 100 sequences, no gradient).
sparse_hyper::SortMetrics EvaluateKeys(sparse_hyper::KeyNetwork& keys,
                                       const sparse_hyper::SortBatch& data,
                                       const c10::Device& device = c10::kCPU);

// Figure 7 of the paper as a grayscale matrix CSV: for the first sequence of
// `data`, the quicksort's levels x_0 .. x_L (left) and the intermediate
// targets t_0 .. t_L (right), one row of images per level, under an
// untrained key network of `config`.
absl::Status WriteLevelsFigure(const SortRunConfig& config,
                               const sparse_hyper::SortBatch& data,
                               const std::string& path);

// Markdown table: method x n, mean (min-max over seeds) of the test
// metrics and wall time.
std::string SortSummaryMarkdown(const std::vector<SortRunResult>& runs);

}  // namespace experiments
}  // namespace indexgrad
