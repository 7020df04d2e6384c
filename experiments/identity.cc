// Identity experiment of Bloem et al. 2018, section 3.1 / figure 2: learn the
// n x n identity with the sampled sparse layer and with the REINFORCE
// baseline, for several n and repeats. Writes, under --out_dir:
//   runs/<method>_n<n>_r<repeat>.csv   per step: loss, and at evaluation
//                                      steps the expected MSE of the rounded
//                                      W, on-diagonal fraction, exact (0/1)
//   runs/<method>_n<n>_r<repeat>.ckpt  checkpoint (a rerun resumes)
//   summary.csv, summary.md            per run: converged, steps, wall time
//   identity.png                       figure 2 (tools/plot.py)
//
//   bazel run //experiments:identity                     # a few minutes
//   bazel run //experiments:identity -- --preset=paper   # the paper's runs
//   bazel run //experiments:identity -- --methods=sparse --sizes=1024,4096
#include <torch/types.h>

#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "experiments/common/csv.h"
#include "experiments/common/device.h"
#include "experiments/common/flags.h"
#include "experiments/common/main.h"
#include "experiments/common/summary.h"
#include "experiments/common/threads.h"
#include "experiments/identity_run.h"

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

namespace {

namespace ex = indexgrad::experiments;

int Fail(const std::string& message) {
  std::fprintf(stderr, "identity: %s\n", message.c_str());
  return 1;
}

// One run's configuration from the preset and the flags.
ex::IdentityConfig ConfigFor(bool paper, const std::string& method, int64_t n, int64_t repeat,
                             const std::string& run_dir, const torch::Device& device) {
  ex::IdentityConfig c;
  c.method = method;
  c.n = n;
  c.repeat = repeat;
  if (paper) ex::ApplyIdentityPaperSettings(&c);
  if (absl::GetFlag(FLAGS_num_local) >= 0) c.num_local = absl::GetFlag(FLAGS_num_local);
  if (absl::GetFlag(FLAGS_num_global) >= 0) c.num_global = absl::GetFlag(FLAGS_num_global);
  if (absl::GetFlag(FLAGS_region) >= 0) c.region = absl::GetFlag(FLAGS_region);
  if (absl::GetFlag(FLAGS_steps) >= 0) c.steps = absl::GetFlag(FLAGS_steps);
  if (absl::GetFlag(FLAGS_lr) > 0) c.lr = absl::GetFlag(FLAGS_lr);
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
  c.device = device;
  return c;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Learns the n x n identity with the sampled sparse layer and the "
      "REINFORCE baseline (Bloem et al. 2018, section 3.1).");
  absl::ParseCommandLine(argc, argv);
  indexgrad::experiments::ApplyThreadsFlag();
  const absl::StatusOr<torch::Device> device = indexgrad::experiments::DeviceFromFlag();
  if (!device.ok()) return Fail(std::string(device.status().message()));

  const std::string preset = absl::GetFlag(FLAGS_preset);
  if (preset != "default" && preset != "paper") {
    return Fail(absl::StrCat("--preset must be 'default' or 'paper', got '", preset, "'"));
  }
  const bool paper = preset == "paper";
  std::vector<int64_t> sizes =
      paper ? std::vector<int64_t>{8, 16, 32, 64} : std::vector<int64_t>{8, 16, 32};
  int64_t repeats = paper ? 3 : 2;
  std::vector<std::string> methods;
  if (!absl::GetFlag(FLAGS_sizes).empty()) {
    sizes.clear();
    for (absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_sizes), ',')) {
      int64_t n;
      if (!absl::SimpleAtoi(part, &n)) {  // n < 2: CheckIdentityConfig, below
        return Fail(absl::StrCat("--sizes must be integers >= 2, got '", part, "'"));
      }
      sizes.push_back(n);
    }
  }
  if (absl::Status st = ex::ParseChoices("methods", absl::GetFlag(FLAGS_methods),
                                         {"sparse", "reinforce"}, &methods);
      !st.ok()) {
    return Fail(std::string(st.message()));
  }
  if (absl::GetFlag(FLAGS_repeats) >= 0) repeats = absl::GetFlag(FLAGS_repeats);
  if (absl::GetFlag(FLAGS_anneal_shape) != "linear" &&
      absl::GetFlag(FLAGS_anneal_shape) != "geometric") {
    return Fail(absl::StrCat("--anneal_shape must be linear or geometric, got '",
                             absl::GetFlag(FLAGS_anneal_shape), "'"));
  }
  if (absl::GetFlag(FLAGS_lr_schedule) != "constant" &&
      absl::GetFlag(FLAGS_lr_schedule) != "cosine") {
    return Fail(absl::StrCat("--lr_schedule must be constant or cosine, got '",
                             absl::GetFlag(FLAGS_lr_schedule), "'"));
  }
  // Every run's values, before the first starts (the library checks again).
  for (const std::string& method : methods) {
    for (int64_t n : sizes) {
      const absl::Status st =
          ex::CheckIdentityConfig(ConfigFor(paper, method, n, 0, "", *device));
      if (!st.ok()) return Fail(std::string(st.message()));
    }
  }

  const std::string out_dir =
      ex::OutputDir(absl::GetFlag(FLAGS_out_dir), "identity");
  const std::string run_dir = out_dir + "/runs";
  if (auto st = ex::MakeDirs(run_dir); !st.ok()) {
    return Fail(std::string(st.message()));
  }
  auto summary_csv = ex::CsvWriter::Open(
      out_dir + "/summary.csv",
      {"method", "n", "repeat", "converged", "steps_to_identity", "steps_done",
       "final_loss", "final_eval_mse", "seconds"});
  if (!summary_csv.ok()) return Fail(std::string(summary_csv.status().message()));
  std::printf("identity: preset %s, sizes", preset.c_str());
  for (int64_t n : sizes) std::printf(" %lld", static_cast<long long>(n));
  std::printf(", %lld repeats, output in %s\n", static_cast<long long>(repeats),
              out_dir.c_str());

  std::vector<ex::IdentityRunSummary> runs;
  for (const std::string& method : methods) {
    for (int64_t n : sizes) {
      for (int64_t r = 0; r < repeats; ++r) {
        absl::StatusOr<ex::IdentityRunSummary> run =
            ex::RunIdentity(ConfigFor(paper, method, n, r, run_dir, *device));
        if (!run.ok()) return Fail(std::string(run.status().message()));
        summary_csv->TextRow(
            {run->method, absl::StrCat(run->n), absl::StrCat(run->repeat),
             run->converged ? "1" : "0", absl::StrCat(run->steps_to_identity),
             absl::StrCat(run->steps_done), absl::StrCat(run->final_loss),
             absl::StrCat(run->final_eval_mse), absl::StrCat(run->seconds)});
        runs.push_back(*run);
      }
    }
  }

  const std::string md = ex::IdentitySummaryMarkdown(methods, sizes, runs);
  if (auto st = ex::WriteSummaryMarkdown(out_dir, md); !st.ok()) {
    return Fail(std::string(st.message()));
  }

  if (absl::GetFlag(FLAGS_plot)) {
    if (auto st = ex::RunPlot("identity", out_dir); !st.ok()) {
      std::fprintf(stderr, "identity: %s\n", std::string(st.message()).c_str());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return indexgrad::experiments::RunMain("identity", Main, argc, argv);
}
