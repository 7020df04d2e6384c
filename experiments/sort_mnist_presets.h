// Settings of //experiments:sort_mnist: the three presets and the flags
// that override them, checked in one place (tested in sort_mnist_test).
//   default     n = 4, 3-digit numbers, small key network, 2 seeds, 400
//               steps, batch 32, Adam lr 1e-3 (minutes on 2 CPU cores;
//               not converged)
//   paper       Bloem et al. 2018 section 3.3: n = 4, 8, 16, 3 digits, the
//               paper's key network (appendix Table 3), batch 64, lr 5e-5,
//               a = n, 3 seeds; 100,000 steps (the paper gives no step
//               count: our choice)
//   neuralsort  NeuralSort's benchmark: n = 3, 5, 7, 9, 15, 4 digits, the
//               paper's key network, batch 20, lr 1e-4, 3 seeds, 100,000
//               steps (our choice)
// All presets: quicksort C = 10 and intermediate loss, NeuralSort / SoftSort
// tau = 1, validation on fixed sequences of validation digits, test on
// fixed sequences of test digits (10,000 in the paper presets).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "experiments/sort_mnist_run.h"

namespace indexgrad {
namespace experiments {

struct SortPreset {
  std::vector<std::string> methods = {"quicksort", "neuralsort", "softsort"};
  std::vector<int64_t> sizes = {4};
  int64_t digits = 3;
  int64_t seeds = 2;
  int64_t steps = 400;
  int64_t batch = 32;
  double lr = 1e-3;
  int64_t num_samples = -1;  // -1: a = n (the paper's choice)
  bool paper_keynet = false;
  int64_t eval_every = 100;
  int64_t val_size = 500;
  int64_t test_size = 1000;
  double temperature = 10.0;
  double tau = 1.0;
};

// "default", "paper" or "neuralsort".
absl::StatusOr<SortPreset> SortPresetNamed(const std::string& name);

// Flag values; "unset" is empty or negative, as the flags' defaults.
struct SortFlagOverrides {
  std::string methods, sizes, keynet;
  int64_t digits = -1, seeds = -1, steps = -1, batch = -1, num_samples = -1,
          eval_every = -1, val_size = -1, test_size = -1;
  double lr = -1, temperature = 10.0, tau = 1.0;
};

// Applies and checks the overrides; an error names the flag and the value.
absl::Status ApplySortOverrides(const SortFlagOverrides& o, SortPreset* p);

// The run settings of one (method, n) under a preset.
SortRunConfig RunConfigFor(const SortPreset& p, const std::string& method, int64_t n);

// "n = 4, 3 digits, 2 seeds x 400 steps, batch 32, lr 0.001, small key network"
std::string DescribeSortPreset(const SortPreset& p);

}  // namespace experiments
}  // namespace indexgrad
