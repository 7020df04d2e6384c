#include "experiments/identity_run.h"

#include <ATen/ATen.h>
#include <torch/optim/adam.h>

#include <cmath>
#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "baselines/reinforce_layer.h"
#include "experiments/common/flags.h"
#include "experiments/common/summary.h"
#include "experiments/common/train_loop.h"
#include "kernels/common/schedules.h"
#include "sparse_hyper/identity_task.h"
#include "sparse_hyper/sparse_layer.h"

namespace indexgrad {
namespace experiments {

void ApplyIdentityPaperSettings(IdentityConfig* c) {
  const int64_t n = c->n;
  const std::map<int64_t, std::pair<int64_t, int64_t>> table = {
      {8, {1, 2}}, {16, {2, 2}}, {32, {2, 8}}, {64, {2, 10}}};
  if (auto it = table.find(n); it != table.end()) {
    c->num_local = it->second.first;
    c->num_global = it->second.second;
  }
  c->region = std::max<int64_t>(1, std::llround(std::log2(n)));
  c->lr = n >= 64 ? 0.001 : 0.005;
  c->steps = n <= 8 ? 10000 : n <= 16 ? 20000 : n <= 32 ? 40000 : 80000;
}

double VarianceFloor(const IdentityConfig& c, int64_t step) {
  if (c.min_sigma_start < 0) return c.min_sigma;
  if (step >= c.anneal_steps) return c.min_sigma;  // exactly (pow would round)
  const double f = double(step) / c.anneal_steps;
  return c.geometric_anneal ? c.min_sigma_start * std::pow(c.min_sigma / c.min_sigma_start, f)
                            : c.min_sigma_start + (c.min_sigma - c.min_sigma_start) * f;
}

absl::Status CheckIdentityConfig(const IdentityConfig& c) {
  if (c.method != "sparse" && c.method != "reinforce") {
    return absl::InvalidArgumentError(
        absl::StrCat("method must be sparse or reinforce, got '", c.method, "'"));
  }
  if (c.n < 2) return FlagError("sizes", "integers >= 2", c.n);
  if (c.steps < 1) return FlagError("steps", ">= 1", c.steps);
  if (c.batch < 1) return FlagError("batch", ">= 1", c.batch);
  if (c.eval_every < 1) return FlagError("eval_every", ">= 1", c.eval_every);
  if (!(c.lr > 0) || !std::isfinite(c.lr)) return FlagError("lr", "a finite number > 0", c.lr);
  if (!(c.tolerance >= 0 && c.tolerance < 1)) return FlagError("tolerance", "in [0, 1)", c.tolerance);
  if (!(c.reinforce_lr > 0) || !std::isfinite(c.reinforce_lr)) {
    return FlagError("reinforce_lr", "a finite number > 0", c.reinforce_lr);
  }
  if (!(c.sigma_scale > 0) || !std::isfinite(c.sigma_scale)) {
    return FlagError("sigma_scale", "a finite number > 0", c.sigma_scale);
  }
  if (!(c.min_sigma >= 0) || !std::isfinite(c.min_sigma)) {
    return FlagError("min_sigma", "a finite number >= 0", c.min_sigma);
  }
  if (!std::isfinite(c.min_sigma_start)) {
    return FlagError("min_sigma_start", "a finite number (< 0: off)", c.min_sigma_start);
  }
  if (c.anneal_steps < 0) return FlagError("anneal_steps", ">= 0", c.anneal_steps);
  if (c.geometric_anneal && c.min_sigma_start >= 0 && !(c.min_sigma > 0 && c.min_sigma_start > 0)) {
    return FlagError("min_sigma_start", "> 0 with --min_sigma > 0 for --anneal_shape=geometric",
                     c.min_sigma_start);
  }
  if (c.rescue_every < 0) return FlagError("rescue_every", ">= 0 (0: off)", c.rescue_every);
  if (c.rescue_steps < 1) return FlagError("rescue_steps", ">= 1", c.rescue_steps);
  if (!(c.rescue_floor > 0) || !std::isfinite(c.rescue_floor)) {
    return FlagError("rescue_floor", "a finite number > 0", c.rescue_floor);
  }
  if (!(c.mean_margin == 0 || (c.mean_margin > 0 && c.mean_margin < 0.5))) {
    return FlagError("mean_margin", "0 (off) or in (0, 0.5)", c.mean_margin);
  }
  if (!(c.adam_eps >= 0) || !std::isfinite(c.adam_eps)) {
    return FlagError("adam_eps", "a finite number >= 0", c.adam_eps);
  }
  return absl::OkStatus();
}

namespace {

// Evaluates rounded tuples [n, 2] and values [n] of the layer after
// `step` steps: expected MSE, on-diagonal fraction, exact (1/0); sets *stop.
using EvaluateTuples = std::function<std::vector<double>(
    int64_t step, const at::Tensor& tuples, const at::Tensor& values, bool* stop)>;

TrainLoopOptions IdentityLoopOptions(const IdentityConfig& c, const std::string& name) {
  TrainLoopOptions loop;
  loop.label = absl::StrFormat("identity %s n=%d r=%d", c.method, c.n, c.repeat);
  loop.steps = c.steps;
  loop.eval_every = c.eval_every;
  loop.checkpoint_every = 1000;
  loop.checkpoint_path = c.run_dir + "/" + name + ".ckpt";
  loop.resume = c.resume;
  loop.csv_path = c.run_dir + "/" + name + ".csv";
  loop.train_columns = {"loss"};
  loop.eval_columns = {"eval_mse", "on_diagonal", "exact"};
  return loop;
}

// The sampled sparse layer, with the variance floor's anneal, the cosine
// learning rate, the mean margin and the rescue of doubled tuples as set.
absl::StatusOr<TrainResult> TrainSparse(const IdentityConfig& c, int64_t seed,
                                        const TrainLoopOptions& loop,
                                        const EvaluateTuples& evaluate_tuples) {
  const int64_t n = c.n;
  sparse_hyper::SparseLayer layer(sparse_hyper::SparseLayerOptions({n}, {n}, n)
                                      .num_global(c.num_global)
                                      .num_local(c.num_local)
                                      .region({c.region, c.region})
                                      .sigma_scale(c.sigma_scale)
                                      .min_sigma(c.min_sigma)
                                      .tolerance(c.tolerance)
                                      .learn_values(c.learn_values)
                                      .shared_samples(c.shared_samples)
                                      .seed(seed));
  layer->to(c.device);
  torch::optim::Adam adam(layer->parameters(),
                          torch::optim::AdamOptions(c.lr).eps(c.adam_eps));
  return RunTrainLoop(
      loop, *layer, adam,
      [&](int64_t step) {
        layer->options.min_sigma(VarianceFloor(c, step));
        if (c.cosine) {
          SetLearningRate(adam, CosineDecay(c.lr, step, c.steps));
        }
        const at::Tensor x = at::randn({c.batch, n}, at::device(c.device));
        const at::Tensor loss = (layer->forward(x) - x).pow(2).mean();
        adam.zero_grad();
        loss.backward();
        adam.step();
        if (c.mean_margin > 0) layer->ClampMeans(c.mean_margin);
        if (c.rescue_every > 0) {
          layer->LowerExtraFloor(c.rescue_floor / double(c.rescue_steps));
          if (step >= c.anneal_steps && (step + 1) % c.rescue_every == 0 &&
              step + 1 + 2 * c.rescue_steps <= c.steps) {
            layer->WidenDoubledTuples(c.rescue_floor);
          }
        }
        return std::vector<double>{loss.item<double>()};
      },
      [&](int64_t steps_done, bool* stop) {
        return evaluate_tuples(steps_done, layer->rounded_tuples(), layer->values, stop);
      });
}

// The REINFORCE layer (the same parametrisation, score-function gradients).
absl::StatusOr<TrainResult> TrainReinforce(const IdentityConfig& c, const TrainLoopOptions& loop,
                                           const EvaluateTuples& evaluate_tuples) {
  const int64_t n = c.n;
  baselines::ReinforceSparseLayer layer(baselines::ReinforceSparseLayerOptions({n}, {n}, n)
                                            .sigma_scale(c.sigma_scale)
                                            .min_sigma(c.min_sigma)
                                            .learn_values(c.learn_values)
                                            .use_baseline(c.reinforce_baseline));
  layer->to(c.device);
  torch::optim::Adam adam(layer->parameters(), torch::optim::AdamOptions(c.reinforce_lr));
  return RunTrainLoop(
      loop, *layer, adam,
      [&](int64_t) {
        const at::Tensor x = at::randn({c.batch, n}, at::device(c.device));
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

}  // namespace

absl::StatusOr<IdentityRunSummary> RunIdentity(const IdentityConfig& c) {
  if (absl::Status st = CheckIdentityConfig(c); !st.ok()) return st;
  const int64_t n = c.n;
  const int64_t seed = c.seed * 7919 + n * 131 + c.repeat;
  at::manual_seed(seed);
  const std::string name = absl::StrFormat("%s_n%d_r%d", c.method, n, c.repeat);
  const TrainLoopOptions loop = IdentityLoopOptions(c, name);

  int64_t steps_to_identity = -1;
  const EvaluateTuples evaluate_tuples = [&](int64_t step, const at::Tensor& tuples,
                                             const at::Tensor& values, bool* stop) {
    const sparse_hyper::IdentityEval e =
        sparse_hyper::EvaluateIdentity(tuples.cpu(), values.detach().cpu(), n);
    if (e.exact && steps_to_identity < 0) steps_to_identity = step;
    *stop = e.exact && c.stop_at_identity;
    return std::vector<double>{e.expected_mse, e.on_diagonal, e.exact ? 1.0 : 0.0};
  };

  absl::StatusOr<TrainResult> result;
  if (c.method == "sparse") {
    result = TrainSparse(c, seed, loop, evaluate_tuples);
  } else if (c.method == "reinforce") {
    result = TrainReinforce(c, loop, evaluate_tuples);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("method must be sparse or reinforce, got '", c.method, "'"));
  }
  if (!result.ok()) return result.status();
  IdentityRunSummary s;
  s.method = c.method;
  s.n = n;
  s.repeat = c.repeat;
  s.steps_done = result->steps_done;
  s.converged = !result->last_eval.empty() && result->last_eval[2] > 0.5;
  s.steps_to_identity =
      s.converged ? (steps_to_identity > 0 ? steps_to_identity : result->steps_done) : -1;
  s.final_loss = result->last_train.empty() ? NAN : result->last_train[0];
  s.final_eval_mse = result->last_eval.empty() ? NAN : result->last_eval[0];
  s.seconds = result->seconds;
  return s;
}

std::string IdentitySummaryMarkdown(const std::vector<std::string>& methods,
                                    const std::vector<int64_t>& sizes,
                                    const std::vector<IdentityRunSummary>& runs) {
  std::vector<std::vector<std::string>> rows;
  for (const std::string& method : methods) {
    for (int64_t n : sizes) {
      int converged = 0, total = 0;
      double mse = 0, secs = 0;
      std::string steps;
      for (const IdentityRunSummary& r : runs) {
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
      rows.push_back({method, absl::StrCat(n), absl::StrFormat("%d/%d", converged, total), steps,
                      absl::StrFormat("%.4g", mse / total), absl::StrFormat("%.1f", secs / total)});
    }
  }
  return MarkdownTable({"method", "n", "converged", "steps to exact I (per run)",
                        "final eval MSE (mean)", "wall time per run (s, mean)"},
                       rows);
}

}  // namespace experiments
}  // namespace indexgrad
