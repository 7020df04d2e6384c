// The training loop every experiment shares: steps with a progress line and
// ETA, periodic evaluation (which may stop the run early), a CSV row per step
// (evaluation columns filled at evaluation steps), and a checkpoint of model,
// optimizer and step to resume from.
//
//   TrainLoopOptions opts;
//   opts.label = "identity sparse n=32"; opts.steps = 5000; ...
//   absl::StatusOr<TrainResult> r = RunTrainLoop(opts, *model, optimizer,
//       /*train_step=*/[&](int64_t step) { ...; return std::vector<double>{loss}; },
//       /*evaluate=*/[&](int64_t steps_done, bool* stop) {
//         ...; return std::vector<double>{acc}; });
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace indexgrad {
namespace experiments {

class BestModel;

struct TrainLoopOptions {
  std::string label;            // progress line prefix
  int64_t steps = 1000;         // maximum steps
  int64_t eval_every = 250;     // 0: evaluate only at the end
  int64_t checkpoint_every = 1000;
  std::string checkpoint_path;  // empty: no checkpoint
  bool resume = true;           // continue from checkpoint_path if present
  std::string csv_path;         // empty: no CSV
  std::vector<std::string> train_columns;
  std::vector<std::string> eval_columns;
  // If set, the best model so far goes into every checkpoint and comes back
  // on resume (a resumed run, or one only evaluated, keeps the best of the
  // steps before). Offer to it inside evaluate(), which runs before the
  // checkpoint of the same step.
  BestModel* best = nullptr;
};

struct TrainResult {
  int64_t steps_done = 0;
  bool stopped_early = false;  // evaluate() asked to stop
  bool resumed = false;
  double seconds = 0;          // wall time of the run, resumed parts included
  std::vector<double> last_train;
  std::vector<double> last_eval;
};

// train_step(step): optimisation step number `step` (0-based: the steps
// already done, counting those of a resumed run); returns train_columns'
// values. Schedules must use `step`, not a counter of their own, which
// would restart at 0 on resume.
// evaluate(steps_done, stop): returns eval_columns' values; sets *stop to
// end the run.
absl::StatusOr<TrainResult> RunTrainLoop(
    const TrainLoopOptions& options, torch::nn::Module& model,
    torch::optim::Optimizer& optimizer,
    const std::function<std::vector<double>(int64_t step)>& train_step,
    const std::function<std::vector<double>(int64_t steps_done, bool* stop)>& evaluate);

// The model of the best evaluation so far, kept in memory (for early
// stopping: report the test error of the best validation model), and in
// the checkpoint when TrainLoopOptions::best points to it:
//   BestModel best(model);
//   options.best = &best;
//   ... in evaluate: best.Offer(val_error, steps_done);
//   ... after training: best.WithBest([&] { test = Error(model, test_set); });
class BestModel {
 public:
  explicit BestModel(torch::nn::Module& model) : model_(model) {}
  // Keeps a copy of the parameters and buffers when `score` is below every
  // score offered before (lower is better).
  void Offer(double score, int64_t step);
  bool has_best() const { return step_ >= 0; }
  int64_t step() const { return step_; }    // -1: nothing offered
  double score() const { return score_; }
  // Runs fn with the best parameters and buffers in the model, then puts
  // the current ones back (fn alone if nothing was offered).
  void WithBest(const std::function<void()>& fn);
  // The kept copy, its step and score (nothing when nothing was offered).
  void Save(torch::serialize::OutputArchive& archive) const;
  // Replaces the kept copy with one saved by Save() from a model of the
  // same parameter and buffer shapes; an error (and no change) otherwise.
  absl::Status Load(torch::serialize::InputArchive& archive);

 private:
  std::vector<at::Tensor> State() const;
  torch::nn::Module& model_;
  std::vector<at::Tensor> best_;
  int64_t step_ = -1;
  double score_ = 0;
};

// Sets every parameter group's learning rate (for schedules inside
// train_step).
void SetLearningRate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace experiments
}  // namespace indexgrad
