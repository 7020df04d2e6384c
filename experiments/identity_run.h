// The identity experiment (//experiments:identity; Bloem et al. 2018
// section 3.1, figure 2): one run learns the n x n identity with the
// sampled sparse layer or the REINFORCE baseline. Shared by the main (flags
// -> IdentityConfig -> RunIdentity -> summary) and its test.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace indexgrad {
namespace experiments {

struct IdentityConfig {
  std::string method = "sparse";  // sparse | reinforce
  int64_t n = 8, repeat = 0;
  int64_t seed = 0;               // base seed; the run's is derived from (seed, n, repeat)
  // Sampling (a_l, a_g, region) and budget: IdentityPaperSettings or flags.
  int64_t num_local = 4, num_global = 4, region = 4, steps = 5000;
  double lr = 0.01;
  double adam_eps = 1e-8;  // Adam's epsilon for the sparse layer
  int64_t batch = 64, eval_every = 50;
  bool stop_at_identity = true;
  double reinforce_lr = 0.01;
  bool reinforce_baseline = true;
  double sigma_scale = 0.1, min_sigma = 0.1, tolerance = 1e-6;
  bool learn_values = false;
  bool shared_samples = false;  // one sample set per step for the batch
  double mean_margin = 0;       // SparseLayer::ClampMeans after each step; 0: off
  // Variance floor annealed from min_sigma_start (< 0: off) to min_sigma
  // over anneal_steps; cosine learning rate; rescue of doubled tuples
  // (rescue_every 0: off).
  double min_sigma_start = -1;
  int64_t anneal_steps = 0;
  bool geometric_anneal = false;  // the floor falls by a constant factor per step
  bool cosine = false;
  int64_t rescue_every = 0, rescue_steps = 1000;
  double rescue_floor = 4;
  bool resume = true;
  std::string run_dir;  // <run_dir>/<method>_n<n>_r<repeat>.csv, .ckpt
  c10::Device device = c10::kCPU;
};

// The variance floor at `step`: min_sigma, or with min_sigma_start >= 0 the
// anneal from min_sigma_start to min_sigma over anneal_steps (linear, or
// geometric: a constant factor per step), then min_sigma.
double VarianceFloor(const IdentityConfig& c, int64_t step);

// The paper's per-n settings (appendix A.1) into `c`: (a_l, a_g), region
// log2 n, learning rate, and the steps at which its runs were stopped.
void ApplyIdentityPaperSettings(IdentityConfig* c);

struct IdentityRunSummary {
  std::string method;
  int64_t n = 0, repeat = 0, steps_done = 0, steps_to_identity = -1;  // -1: never exact
  bool converged = false;
  double final_loss = 0, final_eval_mse = 0, seconds = 0;
};

// The configuration's values; an error names the flag that sets the value
// ("--batch must be >= 1, got 0"). RunIdentity checks first.
absl::Status CheckIdentityConfig(const IdentityConfig& c);

absl::StatusOr<IdentityRunSummary> RunIdentity(const IdentityConfig& c);

// summary.md: one row per (method, n) in the order given.
std::string IdentitySummaryMarkdown(const std::vector<std::string>& methods,
                                    const std::vector<int64_t>& sizes,
                                    const std::vector<IdentityRunSummary>& runs);

}  // namespace experiments
}  // namespace indexgrad
