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
#include <ATen/ATen.h>
#include <torch/optim/adam.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "baselines/reinforce_layer.h"
#include "experiments/common/csv.h"
#include "experiments/common/device.h"
#include "experiments/common/main.h"
#include "experiments/common/threads.h"
#include "experiments/common/train_loop.h"
#include "sparse_hyper/identity_task.h"
#include "sparse_hyper/sparse_layer.h"

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
ABSL_FLAG(int64_t, seed, 0, "base random seed");
ABSL_FLAG(std::string, out_dir, "", "output folder (default <workspace>/out/identity)");
ABSL_FLAG(bool, resume, true, "resume runs from their checkpoints");
ABSL_FLAG(bool, plot, true, "draw identity.png with tools/plot.py");

namespace {

namespace ig = indexgrad;

struct Settings {
  std::vector<int64_t> sizes;
  std::vector<std::string> methods;
  int64_t repeats, steps_small;
  bool paper;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "identity: %s\n", message.c_str());
  return 1;
}

// The paper's per-n settings (appendix A.1): (a_l, a_g), learning rate, and
// the steps at which its runs were stopped.
struct PerN {
  int64_t num_local, num_global, region, steps;
  double lr;
};

PerN SettingsFor(const Settings& s, int64_t n) {
  const int64_t log2n = std::max<int64_t>(1, std::llround(std::log2(n)));
  PerN p{4, 4, 4, s.steps_small, 0.01};
  if (s.paper) {
    const std::map<int64_t, std::pair<int64_t, int64_t>> table = {
        {8, {1, 2}}, {16, {2, 2}}, {32, {2, 8}}, {64, {2, 10}}};
    auto it = table.find(n);
    if (it != table.end()) {
      p.num_local = it->second.first;
      p.num_global = it->second.second;
    }
    p.region = log2n;
    p.lr = n >= 64 ? 0.001 : 0.005;
    p.steps = n <= 8 ? 10000 : n <= 16 ? 20000 : n <= 32 ? 40000 : 80000;
  }
  if (absl::GetFlag(FLAGS_num_local) >= 0) p.num_local = absl::GetFlag(FLAGS_num_local);
  if (absl::GetFlag(FLAGS_num_global) >= 0) p.num_global = absl::GetFlag(FLAGS_num_global);
  if (absl::GetFlag(FLAGS_region) >= 0) p.region = absl::GetFlag(FLAGS_region);
  if (absl::GetFlag(FLAGS_steps) >= 0) p.steps = absl::GetFlag(FLAGS_steps);
  if (absl::GetFlag(FLAGS_lr) > 0) p.lr = absl::GetFlag(FLAGS_lr);
  return p;
}

struct RunSummary {
  std::string method;
  int64_t n, repeat, steps_done, steps_to_identity;
  bool converged;
  double final_loss, final_eval_mse, seconds;
};

// Trains one run; steps_to_identity = -1 if never exact.
absl::StatusOr<RunSummary> RunOne(const std::string& method, int64_t n,
                                  int64_t repeat, const PerN& per_n,
                                  const std::string& run_dir, const torch::Device& device) {
  const int64_t batch = absl::GetFlag(FLAGS_batch);
  const int64_t seed = absl::GetFlag(FLAGS_seed) * 7919 + n * 131 + repeat;
  at::manual_seed(seed);
  const std::string name = absl::StrFormat("%s_n%d_r%d", method, n, repeat);
  ig::experiments::TrainLoopOptions loop;
  loop.label = absl::StrFormat("identity %s n=%d r=%d", method, n, repeat);
  loop.steps = per_n.steps;
  loop.eval_every = absl::GetFlag(FLAGS_eval_every);
  loop.checkpoint_every = 1000;
  loop.checkpoint_path = run_dir + "/" + name + ".ckpt";
  loop.resume = absl::GetFlag(FLAGS_resume);
  loop.csv_path = run_dir + "/" + name + ".csv";
  loop.train_columns = {"loss"};
  loop.eval_columns = {"eval_mse", "on_diagonal", "exact"};

  int64_t steps_to_identity = -1;
  auto evaluate_tuples = [&](int64_t step, const at::Tensor& tuples,
                             const at::Tensor& values, bool* stop) {
    const ig::sparse_hyper::IdentityEval e =
        ig::sparse_hyper::EvaluateIdentity(tuples.cpu(), values.detach().cpu(), n);
    if (e.exact && steps_to_identity < 0) steps_to_identity = step;
    *stop = e.exact && absl::GetFlag(FLAGS_stop_at_identity);
    return std::vector<double>{e.expected_mse, e.on_diagonal, e.exact ? 1.0 : 0.0};
  };

  absl::StatusOr<ig::experiments::TrainResult> result;
  if (method == "sparse") {
    ig::sparse_hyper::SparseLayer layer(
        ig::sparse_hyper::SparseLayerOptions({n}, {n}, n)
            .num_global(per_n.num_global)
            .num_local(per_n.num_local)
            .region({per_n.region, per_n.region})
            .sigma_scale(absl::GetFlag(FLAGS_sigma_scale))
            .min_sigma(absl::GetFlag(FLAGS_min_sigma))
            .tolerance(absl::GetFlag(FLAGS_tolerance))
            .learn_values(absl::GetFlag(FLAGS_learn_values))
            .seed(seed));
    layer->to(device);
    torch::optim::Adam adam(layer->parameters(), torch::optim::AdamOptions(per_n.lr));
    const double floor_end = absl::GetFlag(FLAGS_min_sigma);
    const double floor_start = absl::GetFlag(FLAGS_min_sigma_start);
    const int64_t anneal = absl::GetFlag(FLAGS_anneal_steps);
    const bool cosine = absl::GetFlag(FLAGS_lr_schedule) == "cosine";
    const int64_t rescue_every = absl::GetFlag(FLAGS_rescue_every);
    const int64_t rescue_steps = absl::GetFlag(FLAGS_rescue_steps);
    const double rescue_floor = absl::GetFlag(FLAGS_rescue_floor);
    result = ig::experiments::RunTrainLoop(
        loop, *layer, adam,
        [&](int64_t step) {
          if (floor_start >= 0) {
            const double f = anneal > 0 ? std::min(1.0, double(step) / anneal) : 1.0;
            layer->options.min_sigma(floor_start + (floor_end - floor_start) * f);
          }
          if (cosine) {
            ig::experiments::SetLearningRate(
                adam, per_n.lr * 0.5 * (1 + std::cos(M_PI * double(step) / per_n.steps)));
          }
          const at::Tensor x = at::randn({batch, n}, at::device(device));
          const at::Tensor loss = (layer->forward(x) - x).pow(2).mean();
          adam.zero_grad();
          loss.backward();
          adam.step();
          if (rescue_every > 0) {
            layer->LowerExtraFloor(rescue_floor / double(rescue_steps));
            if (step >= anneal && (step + 1) % rescue_every == 0 &&
                step + 1 + 2 * rescue_steps <= per_n.steps) {
              layer->WidenDoubledTuples(rescue_floor);
            }
          }
          return std::vector<double>{loss.item<double>()};
        },
        [&](int64_t steps_done, bool* stop) {
          return evaluate_tuples(steps_done, layer->rounded_tuples(), layer->values, stop);
        });
  } else {
    ig::baselines::ReinforceSparseLayer layer(
        ig::baselines::ReinforceSparseLayerOptions({n}, {n}, n)
            .sigma_scale(absl::GetFlag(FLAGS_sigma_scale))
            .min_sigma(absl::GetFlag(FLAGS_min_sigma))
            .learn_values(absl::GetFlag(FLAGS_learn_values))
            .use_baseline(absl::GetFlag(FLAGS_reinforce_baseline)));
    layer->to(device);
    torch::optim::Adam adam(layer->parameters(),
                            torch::optim::AdamOptions(absl::GetFlag(FLAGS_reinforce_lr)));
    result = ig::experiments::RunTrainLoop(
        loop, *layer, adam,
        [&](int64_t) {
          const at::Tensor x = at::randn({batch, n}, at::device(device));
          const at::Tensor per_row = (layer->forward(x) - x).pow(2).mean(1);
          const at::Tensor loss = per_row.mean();
          adam.zero_grad();
          (loss + layer->score_surrogate(per_row)).backward();
          adam.step();
          return std::vector<double>{loss.item<double>()};
        },
        [&](int64_t steps_done, bool* stop) {
          return evaluate_tuples(steps_done, layer->rounded_tuples(), layer->values, stop);
        });
  }
  if (!result.ok()) return result.status();
  RunSummary s;
  s.method = method;
  s.n = n;
  s.repeat = repeat;
  s.steps_done = result->steps_done;
  s.converged = !result->last_eval.empty() && result->last_eval[2] > 0.5;
  s.steps_to_identity = s.converged ? (steps_to_identity > 0 ? steps_to_identity
                                                              : result->steps_done)
                                    : -1;
  s.final_loss = result->last_train.empty() ? NAN : result->last_train[0];
  s.final_eval_mse = result->last_eval.empty() ? NAN : result->last_eval[0];
  s.seconds = result->seconds;
  return s;
}

}  // namespace

namespace {

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Learns the n x n identity with the sampled sparse layer and the "
      "REINFORCE baseline (Bloem et al. 2018, section 3.1).");
  absl::ParseCommandLine(argc, argv);
  indexgrad::experiments::ApplyThreadsFlag();
  const absl::StatusOr<torch::Device> device = indexgrad::experiments::DeviceFromFlag();
  if (!device.ok()) return Fail(std::string(device.status().message()));

  Settings s;
  const std::string preset = absl::GetFlag(FLAGS_preset);
  if (preset != "default" && preset != "paper") {
    return Fail(absl::StrCat("--preset must be 'default' or 'paper', got '", preset, "'"));
  }
  s.paper = preset == "paper";
  s.sizes = s.paper ? std::vector<int64_t>{8, 16, 32, 64} : std::vector<int64_t>{8, 16, 32};
  s.repeats = s.paper ? 3 : 2;
  s.steps_small = 5000;
  if (!absl::GetFlag(FLAGS_sizes).empty()) {
    s.sizes.clear();
    for (absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_sizes), ',')) {
      int64_t n;
      if (!absl::SimpleAtoi(part, &n) || n < 2) {
        return Fail(absl::StrCat("--sizes must be integers >= 2, got '", part, "'"));
      }
      s.sizes.push_back(n);
    }
  }
  for (absl::string_view m : absl::StrSplit(absl::GetFlag(FLAGS_methods), ',')) {
    if (m != "sparse" && m != "reinforce") {
      return Fail(absl::StrCat("--methods takes sparse and/or reinforce, got '", m, "'"));
    }
    s.methods.emplace_back(m);
  }
  if (absl::GetFlag(FLAGS_repeats) >= 0) s.repeats = absl::GetFlag(FLAGS_repeats);
  if (absl::GetFlag(FLAGS_batch) < 1) {
    return Fail(absl::StrCat("--batch must be >= 1, got ", absl::GetFlag(FLAGS_batch)));
  }
  if (absl::GetFlag(FLAGS_eval_every) < 1) {
    return Fail(absl::StrCat("--eval_every must be >= 1, got ",
                             absl::GetFlag(FLAGS_eval_every)));
  }
  const double tol = absl::GetFlag(FLAGS_tolerance);
  if (!(tol >= 0 && tol < 1)) {
    return Fail(absl::StrCat("--tolerance must be in [0, 1), got ", tol));
  }
  if (!(absl::GetFlag(FLAGS_reinforce_lr) > 0)) return Fail("--reinforce_lr must be > 0");
  if (!(absl::GetFlag(FLAGS_sigma_scale) > 0)) return Fail("--sigma_scale must be > 0");
  if (!(absl::GetFlag(FLAGS_min_sigma) >= 0) || !std::isfinite(absl::GetFlag(FLAGS_min_sigma))) {
    return Fail(absl::StrCat("--min_sigma must be finite and >= 0, got ",
                             absl::GetFlag(FLAGS_min_sigma)));
  }
  if (!std::isfinite(absl::GetFlag(FLAGS_min_sigma_start))) {
    return Fail(absl::StrCat("--min_sigma_start must be a finite number, got ",
                             absl::GetFlag(FLAGS_min_sigma_start)));
  }
  if (absl::GetFlag(FLAGS_rescue_every) < 0 || absl::GetFlag(FLAGS_rescue_steps) < 1 ||
      !(absl::GetFlag(FLAGS_rescue_floor) > 0) || !std::isfinite(absl::GetFlag(FLAGS_rescue_floor))) {
    return Fail(absl::StrCat("--rescue_every must be >= 0, --rescue_steps >= 1 and "
                             "--rescue_floor finite and > 0, got ",
                             absl::GetFlag(FLAGS_rescue_every), ", ",
                             absl::GetFlag(FLAGS_rescue_steps), " and ",
                             absl::GetFlag(FLAGS_rescue_floor)));
  }
  if (absl::GetFlag(FLAGS_anneal_steps) < 0) {
    return Fail(absl::StrCat("--anneal_steps must be >= 0, got ",
                             absl::GetFlag(FLAGS_anneal_steps)));
  }
  if (absl::GetFlag(FLAGS_lr_schedule) != "constant" &&
      absl::GetFlag(FLAGS_lr_schedule) != "cosine") {
    return Fail(absl::StrCat("--lr_schedule must be constant or cosine, got '",
                             absl::GetFlag(FLAGS_lr_schedule), "'"));
  }

  const std::string out_dir =
      ig::experiments::OutputDir(absl::GetFlag(FLAGS_out_dir), "identity");
  const std::string run_dir = out_dir + "/runs";
  if (auto st = ig::experiments::MakeDirs(run_dir); !st.ok()) {
    return Fail(std::string(st.message()));
  }
  auto summary_csv = ig::experiments::CsvWriter::Open(
      out_dir + "/summary.csv",
      {"method", "n", "repeat", "converged", "steps_to_identity", "steps_done",
       "final_loss", "final_eval_mse", "seconds"});
  if (!summary_csv.ok()) return Fail(std::string(summary_csv.status().message()));
  std::printf("identity: preset %s, sizes", preset.c_str());
  for (int64_t n : s.sizes) std::printf(" %lld", static_cast<long long>(n));
  std::printf(", %lld repeats, output in %s\n", static_cast<long long>(s.repeats),
              out_dir.c_str());

  std::vector<RunSummary> runs;
  for (const std::string& method : s.methods) {
    for (int64_t n : s.sizes) {
      const PerN per_n = SettingsFor(s, n);
      for (int64_t r = 0; r < s.repeats; ++r) {
        absl::StatusOr<RunSummary> run = RunOne(method, n, r, per_n, run_dir, *device);
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

  // Markdown table: one row per (method, n).
  std::string md =
      "| method | n | converged | steps to exact I (per run) | final eval MSE (mean) | wall time per run (s, mean) |\n"
      "|---|---|---|---|---|---|\n";
  for (const std::string& method : s.methods) {
    for (int64_t n : s.sizes) {
      int converged = 0, total = 0;
      double mse = 0, secs = 0;
      std::string steps;
      for (const RunSummary& r : runs) {
        if (r.method != method || r.n != n) continue;
        ++total;
        converged += r.converged;
        mse += r.final_eval_mse;
        secs += r.seconds;
        absl::StrAppend(&steps, steps.empty() ? "" : ", ",
                        r.converged ? absl::StrCat(r.steps_to_identity)
                                    : absl::StrCat("no (", r.steps_done, ")"));
      }
      if (total == 0) continue;
      absl::StrAppendFormat(&md, "| %s | %d | %d/%d | %s | %.4g | %.1f |\n", method,
                            n, converged, total, steps, mse / total, secs / total);
    }
  }
  std::printf("\n%s\n", md.c_str());
  std::ofstream(out_dir + "/summary.md") << md;

  if (absl::GetFlag(FLAGS_plot)) {
    if (auto st = ig::experiments::RunPlot("identity", out_dir); !st.ok()) {
      std::fprintf(stderr, "identity: %s\n", std::string(st.message()).c_str());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return indexgrad::experiments::RunMain("identity", Main, argc, argv);
}
