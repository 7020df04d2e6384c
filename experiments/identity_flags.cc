#include "experiments/identity_flags.h"

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "experiments/common/device.h"
#include "experiments/common/flags.h"
#include "experiments/common/csv.h"

ABSL_FLAG(std::string, preset, "default",
          "default: n = 8,16,32, 2 repeats, up to 5000 steps (minutes on 2 "
          "CPU cores); paper: n = 8,16,32,64, the paper's samples, region "
          "log2 n and learning rates, 3 repeats, up to 10k/20k/40k/80k steps. "
          "Explicit flags override the preset.");
ABSL_FLAG(std::string, sizes, "", "comma-separated n (preset if empty)");
ABSL_FLAG(std::string, methods, "sparse,reinforce", "sparse and/or reinforce");
ABSL_FLAG(int64_t, repeats, -1, "runs per (method, n) (preset if < 0)");
ABSL_FLAG(int64_t, steps, -1, "maximum steps per run (preset if < 0)");
ABSL_FLAG(int64_t, eval_every, 50, "steps between evaluations");
ABSL_FLAG(bool, stop_at_identity, true,
          "end a run once the rounded means are exactly I");
ABSL_FLAG(int64_t, batch, 64, "batch size");
ABSL_FLAG(double, lr, -1, "sparse layer Adam learning rate (preset if < 0)");
ABSL_FLAG(double, adam_eps, 1e-8,
          "sparse layer: Adam's epsilon (its usual 1e-8; gradients of the mean loss shrink "
          "with n)");
ABSL_FLAG(double, reinforce_lr, 0.01, "REINFORCE Adam learning rate");
ABSL_FLAG(bool, reinforce_baseline, true,
          "REINFORCE with a moving-average baseline (the reference had none)");
ABSL_FLAG(int64_t, num_global, -1, "global samples per tuple (preset if < 0)");
ABSL_FLAG(int64_t, num_local, -1, "local samples per tuple (preset if < 0)");
ABSL_FLAG(int64_t, region, -1, "local sampling box per dimension (preset if < 0)");
ABSL_FLAG(double, sigma_scale, 0.1, "variance scale (times n)");
ABSL_FLAG(double, min_sigma, 0.1, "variance floor tau (cells^2)");
ABSL_FLAG(double, min_sigma_start, -1,
          "variance floor at step 0, falling linearly to --min_sigma over "
          "--anneal_steps (keeps the variances wide early); < 0: constant");
ABSL_FLAG(int64_t, anneal_steps, 0, "steps of the --min_sigma_start schedule");
ABSL_FLAG(std::string, anneal_shape, "linear",
          "linear or geometric (the floor falls by a constant factor per step)");
ABSL_FLAG(int64_t, rescue_every, 0,
          "every this many steps after --anneal_steps, tuples that round to an index an "
          "earlier tuple holds get --rescue_floor cells^2 added to their variance, lowered "
          "linearly to 0 over --rescue_steps (0: never; SparseLayer::WidenDoubledTuples)");
ABSL_FLAG(double, rescue_floor, 4, "variance added to a rescued tuple (cells^2)");
ABSL_FLAG(int64_t, rescue_steps, 1000, "steps over which a rescued tuple's extra variance falls");
ABSL_FLAG(std::string, lr_schedule, "constant",
          "sparse layer learning rate: constant, or cosine (to 0 at --steps)");
ABSL_FLAG(double, tolerance, 1e-6,
          "proportion cut-off (0 = dense; see kernels/spread_values)");
ABSL_FLAG(bool, learn_values, false,
          "learn the values too (false: fixed at 1, only the structure is "
          "learned, as in the reference identity runs)");
ABSL_FLAG(bool, shared_samples, false,
          "sparse layer: one sample set per step for the whole batch instead "
          "of one per row (cheaper steps, noisier gradients)");
ABSL_FLAG(double, mean_margin, 0,
          "sparse layer: after every step keep the means this many cells "
          "(0 < m < 0.5) inside the range, where the sigmoid's gradient "
          "has not vanished (0 = off)");
ABSL_FLAG(int64_t, seed, 0, "base random seed");
ABSL_FLAG(std::string, out_dir, "", "output folder (default <workspace>/out/identity)");
ABSL_FLAG(bool, resume, true, "resume runs from their checkpoints");
ABSL_FLAG(bool, plot, true, "draw identity.png with tools/plot.py");

namespace indexgrad {
namespace experiments {
namespace {

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

absl::Status OneOf(const char* flag, const std::string& value, const char* a, const char* b) {
  if (value == a || value == b) return absl::OkStatus();
  return Invalid(absl::StrCat("--", flag, " must be ", a, " or ", b, ", got '", value, "'"));
}

}  // namespace

IdentityConfig IdentityConfigFromFlags(const IdentityPlan& plan, const std::string& method,
                                       int64_t n, int64_t repeat, const std::string& run_dir) {
  IdentityConfig c;
  c.method = method;
  c.n = n;
  c.repeat = repeat;
  if (plan.paper) ApplyIdentityPaperSettings(&c);
  if (absl::GetFlag(FLAGS_num_local) >= 0) c.num_local = absl::GetFlag(FLAGS_num_local);
  if (absl::GetFlag(FLAGS_num_global) >= 0) c.num_global = absl::GetFlag(FLAGS_num_global);
  if (absl::GetFlag(FLAGS_region) >= 0) c.region = absl::GetFlag(FLAGS_region);
  if (absl::GetFlag(FLAGS_steps) >= 0) c.steps = absl::GetFlag(FLAGS_steps);
  // Negative: the preset's; 0 and NaN are taken, and refused by the check.
  if (!(absl::GetFlag(FLAGS_lr) < 0)) c.lr = absl::GetFlag(FLAGS_lr);
  c.seed = absl::GetFlag(FLAGS_seed);
  c.batch = absl::GetFlag(FLAGS_batch);
  c.eval_every = absl::GetFlag(FLAGS_eval_every);
  c.stop_at_identity = absl::GetFlag(FLAGS_stop_at_identity);
  c.reinforce_lr = absl::GetFlag(FLAGS_reinforce_lr);
  c.reinforce_baseline = absl::GetFlag(FLAGS_reinforce_baseline);
  c.sigma_scale = absl::GetFlag(FLAGS_sigma_scale);
  c.min_sigma = absl::GetFlag(FLAGS_min_sigma);
  c.min_sigma_start = absl::GetFlag(FLAGS_min_sigma_start);
  c.anneal_steps = absl::GetFlag(FLAGS_anneal_steps);
  c.geometric_anneal = absl::GetFlag(FLAGS_anneal_shape) == "geometric";
  c.cosine = absl::GetFlag(FLAGS_lr_schedule) == "cosine";
  c.adam_eps = absl::GetFlag(FLAGS_adam_eps);
  c.rescue_every = absl::GetFlag(FLAGS_rescue_every);
  c.rescue_steps = absl::GetFlag(FLAGS_rescue_steps);
  c.rescue_floor = absl::GetFlag(FLAGS_rescue_floor);
  c.tolerance = absl::GetFlag(FLAGS_tolerance);
  c.learn_values = absl::GetFlag(FLAGS_learn_values);
  c.shared_samples = absl::GetFlag(FLAGS_shared_samples);
  c.mean_margin = absl::GetFlag(FLAGS_mean_margin);
  c.resume = absl::GetFlag(FLAGS_resume);
  c.run_dir = run_dir;
  c.device = plan.device;
  return c;
}

absl::StatusOr<IdentityPlan> IdentityPlanFromFlags() {
  IdentityPlan plan;
  const absl::StatusOr<torch::Device> device = DeviceFromFlag();
  if (!device.ok()) return device.status();
  plan.device = *device;
  plan.preset = absl::GetFlag(FLAGS_preset);
  if (plan.preset != "default" && plan.preset != "paper") {
    return Invalid(absl::StrCat("--preset must be 'default' or 'paper', got '", plan.preset, "'"));
  }
  plan.paper = plan.preset == "paper";
  plan.sizes = plan.paper ? std::vector<int64_t>{8, 16, 32, 64} : std::vector<int64_t>{8, 16, 32};
  plan.repeats = plan.paper ? 3 : 2;
  if (!absl::GetFlag(FLAGS_sizes).empty()) {
    plan.sizes.clear();
    for (absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_sizes), ',')) {
      int64_t n;
      if (!absl::SimpleAtoi(part, &n)) {  // n < 2: CheckIdentityConfig, below
        return Invalid(absl::StrCat("--sizes must be integers >= 2, got '", part, "'"));
      }
      plan.sizes.push_back(n);
    }
  }
  if (absl::Status st = ParseChoices("methods", absl::GetFlag(FLAGS_methods),
                                     {"sparse", "reinforce"}, &plan.methods);
      !st.ok()) {
    return st;
  }
  if (absl::GetFlag(FLAGS_repeats) >= 0) plan.repeats = absl::GetFlag(FLAGS_repeats);
  if (plan.repeats < 1) {
    return FlagError("repeats", ">= 1 (negative: the preset's)", plan.repeats);
  }
  for (const absl::Status& st :
       {OneOf("anneal_shape", absl::GetFlag(FLAGS_anneal_shape), "linear", "geometric"),
        OneOf("lr_schedule", absl::GetFlag(FLAGS_lr_schedule), "constant", "cosine")}) {
    if (!st.ok()) return st;
  }
  // Every run's values, before the first starts (the library checks again).
  for (const std::string& method : plan.methods) {
    for (int64_t n : plan.sizes) {
      const absl::Status st = CheckIdentityConfig(IdentityConfigFromFlags(plan, method, n, 0, ""));
      if (!st.ok()) return st;
    }
  }
  plan.out_dir = OutputDir(absl::GetFlag(FLAGS_out_dir), "identity");
  plan.plot = absl::GetFlag(FLAGS_plot);
  return plan;
}

}  // namespace experiments
}  // namespace indexgrad
