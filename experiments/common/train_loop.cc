#include "experiments/common/train_loop.h"

#include <cmath>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cstdio>
#include <fstream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/common/csv.h"
#include "experiments/common/progress.h"
#include "kernels/common/schedules.h"

namespace indexgrad {
namespace experiments {
namespace {

bool FileExists(const std::string& path) {
  return std::ifstream(path).good();
}

// finished: 0 = in progress, 1 = all steps done, 2 = stopped by evaluate().
void SaveCheckpoint(const std::string& path, torch::nn::Module& model,
                    torch::optim::Optimizer& optimizer, const BestModel* best,
                    int64_t step, int finished, double seconds) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive, optimizer_archive;
  model.save(model_archive);
  optimizer.save(optimizer_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optimizer_archive);
  if (best != nullptr && best->has_best()) {
    torch::serialize::OutputArchive best_archive;
    best->Save(best_archive);
    archive.write("best", best_archive);
  }
  archive.write("step", at::tensor(step));
  archive.write("finished", at::tensor(finished));
  archive.write("seconds", at::tensor(seconds, at::kDouble));
  const std::string tmp = path + ".tmp";
  archive.save_to(tmp);
  std::rename(tmp.c_str(), path.c_str());  // never leave a half-written file
}

// Empty when every parameter and buffer of `module` (and, recursively, of
// its children, which Module::save nests as archives of their own) is in
// `archive` with the same shape; else which one differs and how.
std::string ShapeMismatch(const torch::nn::Module& module,
                          torch::serialize::InputArchive& archive,
                          const std::string& prefix) {
  auto compare = [&](const std::string& name, const at::Tensor& here,
                     bool is_buffer) -> std::string {
    at::Tensor saved;
    if (archive.try_read(name, saved, is_buffer) && saved.sizes() == here.sizes()) {
      return "";
    }
    return absl::StrCat(is_buffer ? "buffer '" : "parameter '", prefix, name, "' is ",
                        saved.defined() ? c10::str(saved.sizes()) : std::string("missing"),
                        " there and ", c10::str(here.sizes()), " here");
  };
  for (const auto& p : module.named_parameters(/*recurse=*/false)) {
    if (std::string bad = compare(p.key(), p.value(), false); !bad.empty()) return bad;
  }
  for (const auto& b : module.named_buffers(/*recurse=*/false)) {
    if (std::string bad = compare(b.key(), b.value(), true); !bad.empty()) return bad;
  }
  for (const auto& child : module.named_children()) {
    torch::serialize::InputArchive child_archive;
    if (!archive.try_read(child.key(), child_archive)) {
      return absl::StrCat("module '", prefix, child.key(), "' is missing there");
    }
    if (std::string bad = ShapeMismatch(*child.value(), child_archive,
                                        absl::StrCat(prefix, child.key(), "."));
        !bad.empty()) {
      return bad;
    }
  }
  return "";
}

std::string JoinValues(const std::vector<double>& values, size_t expected) {
  std::string out;
  for (size_t i = 0; i < expected; ++i) {
    if (i) out += ",";
    if (i < values.size()) absl::StrAppend(&out, values[i]);
  }
  return out;
}

}  // namespace

namespace {

// Restores model, optimizer, options.best, the step reached, the wall time
// so far and whether the run had stopped early from options.checkpoint_path.
absl::Status LoadCheckpoint(const TrainLoopOptions& options, torch::nn::Module& model,
                            torch::optim::Optimizer& optimizer, TrainResult* result,
                            int64_t* start, double* previous_seconds) {
  try {
    torch::serialize::InputArchive archive, model_archive, optimizer_archive;
    // Onto the model's device, whichever device the checkpoint came from.
    const std::vector<at::Tensor> params = model.parameters();
    archive.load_from(options.checkpoint_path,
                      params.empty() ? c10::optional<c10::Device>()
                                     : c10::optional<c10::Device>(params[0].device()));
    archive.read("model", model_archive);
    archive.read("optimizer", optimizer_archive);
    // Module::load replaces tensors whatever their shape: a checkpoint of
    // another configuration (say another image size under the same run
    // name) would load silently and fail later. Compare shapes first.
    if (std::string bad = ShapeMismatch(model, model_archive, ""); !bad.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "checkpoint '", options.checkpoint_path, "' does not match this run: ", bad,
          " (another configuration under the same name?); delete it, pass "
          "--resume=false, or use another output folder"));
    }
    torch::serialize::InputArchive best_archive;
    if (options.best != nullptr && archive.try_read("best", best_archive)) {
      if (absl::Status st = options.best->Load(best_archive); !st.ok()) {
        return absl::FailedPreconditionError(
            absl::StrCat("checkpoint '", options.checkpoint_path, "': ", st.message()));
      }
    }
    model.load(model_archive);
    optimizer.load(optimizer_archive);
    at::Tensor step, finished, seconds;
    archive.read("step", step);
    archive.read("finished", finished);
    archive.read("seconds", seconds);
    *previous_seconds = seconds.item<double>();
    *start = step.item<int64_t>();
    result->resumed = true;
    // A run stopped by evaluate(), or one that already has all its steps,
    // is only evaluated; one that finished fewer steps than now asked
    // continues.
    result->stopped_early = finished.item<int64_t>() == 2;
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("cannot resume from checkpoint '",
                                            options.checkpoint_path,
                                            "' (delete it to start over): ",
                                            e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

// A resumed run with nothing left to train: evaluated once; its last
// training values are the CSV's last row.
absl::StatusOr<TrainResult> EvaluateOnly(
    const TrainLoopOptions& options, torch::nn::Module& model, TrainResult result,
    int64_t start, double previous_seconds,
    const std::function<std::vector<double>(int64_t steps_done, bool* stop)>& evaluate) {
  result.steps_done = start;
  result.seconds = previous_seconds;
  model.eval();
  bool ignored = false;
  result.last_eval = evaluate(start, &ignored);
  model.train();
  if (!options.csv_path.empty()) {
    auto last = LastRowValues(options.csv_path, options.train_columns);
    if (!last.ok()) return last.status();
    result.last_train = *last;
  }
  return result;
}

// The run's CSV (step, train_columns, eval_columns), with the rows after
// `start` dropped when resumed; none when options.csv_path is empty.
absl::StatusOr<std::optional<CsvWriter>> OpenRunCsv(const TrainLoopOptions& options,
                                                    bool resumed, int64_t start) {
  if (options.csv_path.empty()) return std::optional<CsvWriter>();
  std::vector<std::string> columns{"step"};
  columns.insert(columns.end(), options.train_columns.begin(), options.train_columns.end());
  columns.insert(columns.end(), options.eval_columns.begin(), options.eval_columns.end());
  if (resumed) {
    if (absl::Status st = DropRowsAfterStep(options.csv_path, start); !st.ok()) return st;
  }
  auto opened = CsvWriter::Open(options.csv_path, columns, /*append=*/resumed);
  if (!opened.ok()) return opened.status();
  return std::optional<CsvWriter>(std::move(*opened));
}

// "loss 0.1234  val_error 0.05  " for the progress line.
std::string StatusLine(const TrainLoopOptions& options, const TrainResult& result) {
  std::string status;
  for (size_t i = 0; i < options.train_columns.size() && i < result.last_train.size(); ++i) {
    absl::StrAppendFormat(&status, "%s %.4g  ", options.train_columns[i], result.last_train[i]);
  }
  for (size_t i = 0; i < options.eval_columns.size() && i < result.last_eval.size(); ++i) {
    absl::StrAppendFormat(&status, "%s %.4g  ", options.eval_columns[i], result.last_eval[i]);
  }
  return status;
}

}  // namespace

absl::StatusOr<TrainResult> RunTrainLoop(
    const TrainLoopOptions& options, torch::nn::Module& model,
    torch::optim::Optimizer& optimizer,
    const std::function<std::vector<double>(int64_t step)>& train_step,
    const std::function<std::vector<double>(int64_t steps_done, bool* stop)>& evaluate) {
  if (options.steps < 0) {
    return absl::InvalidArgumentError(absl::StrCat("steps must be >= 0, got ", options.steps));
  }
  TrainResult result;
  int64_t start = 0;
  double previous_seconds = 0;  // wall time of earlier invocations
  if (!options.checkpoint_path.empty() && options.resume && FileExists(options.checkpoint_path)) {
    if (absl::Status st =
            LoadCheckpoint(options, model, optimizer, &result, &start, &previous_seconds);
        !st.ok()) {
      return st;
    }
    if (result.stopped_early || start >= options.steps) {
      return EvaluateOnly(options, model, result, start, previous_seconds, evaluate);
    }
  }
  absl::StatusOr<std::optional<CsvWriter>> csv = OpenRunCsv(options, result.resumed, start);
  if (!csv.ok()) return csv.status();

  Progress progress(options.label, options.steps, start);
  model.train();
  int64_t step = start;
  bool stop = false;
  while (step < options.steps && !stop) {
    result.last_train = train_step(step);
    ++step;
    const bool eval_now = (options.eval_every > 0 && step % options.eval_every == 0) ||
                          step == options.steps;
    std::vector<double> eval_values;
    if (eval_now) {
      model.eval();
      eval_values = evaluate(step, &stop);
      model.train();
      result.last_eval = eval_values;
    }
    if (*csv) {
      (*csv)->TextRow({absl::StrCat(step),
                       JoinValues(result.last_train, options.train_columns.size()),
                       JoinValues(eval_values, options.eval_columns.size())});
    }
    progress.Update(step, StatusLine(options, result));
    if (!options.checkpoint_path.empty() && options.checkpoint_every > 0 &&
        step % options.checkpoint_every == 0) {
      SaveCheckpoint(options.checkpoint_path, model, optimizer, options.best, step, 0,
                     previous_seconds + progress.ElapsedSeconds());
    }
  }
  result.stopped_early = stop;
  result.steps_done = step;
  result.seconds = previous_seconds + progress.Finish();
  if (!options.checkpoint_path.empty()) {
    SaveCheckpoint(options.checkpoint_path, model, optimizer, options.best, step,
                   stop ? 2 : 1, result.seconds);
  }
  return result;
}

void SetLearningRate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

std::vector<at::Tensor> BestModel::State() const {
  std::vector<at::Tensor> all = model_.parameters();
  for (const at::Tensor& b : model_.buffers()) all.push_back(b);
  return all;
}

void BestModel::Offer(double score, int64_t step) {
  if (std::isnan(score) || (step_ >= 0 && !(score < score_))) return;  // NaN: never best
  at::NoGradGuard no_grad;
  best_.clear();
  for (const at::Tensor& t : State()) best_.push_back(t.detach().clone());
  step_ = step;
  score_ = score;
}

void BestModel::WithBest(const std::function<void()>& fn) {
  if (step_ < 0) return fn();
  std::vector<at::Tensor> live = State(), current;
  {
    at::NoGradGuard no_grad;
    for (const at::Tensor& t : live) current.push_back(t.detach().clone());
    for (size_t i = 0; i < live.size(); ++i) live[i].copy_(best_[i]);
  }
  fn();
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < live.size(); ++i) live[i].copy_(current[i]);
}

void BestModel::Save(torch::serialize::OutputArchive& archive) const {
  if (step_ < 0) return;
  archive.write("step", at::tensor(step_));
  archive.write("score", at::tensor(score_, at::kDouble));
  archive.write("count", at::tensor(static_cast<int64_t>(best_.size())));
  for (size_t i = 0; i < best_.size(); ++i) archive.write(absl::StrCat("t", i), best_[i]);
}

absl::Status BestModel::Load(torch::serialize::InputArchive& archive) {
  at::Tensor step, score, count;
  if (!archive.try_read("step", step) || !archive.try_read("score", score) ||
      !archive.try_read("count", count)) {
    return absl::DataLossError("the best model's step, score or count is missing");
  }
  const std::vector<at::Tensor> live = State();
  if (count.item<int64_t>() != static_cast<int64_t>(live.size())) {
    return absl::FailedPreconditionError(
        absl::StrCat("the best model has ", count.item<int64_t>(),
                     " parameters and buffers there and ", live.size(), " here"));
  }
  std::vector<at::Tensor> loaded;
  for (size_t i = 0; i < live.size(); ++i) {
    at::Tensor t;
    if (!archive.try_read(absl::StrCat("t", i), t)) {
      return absl::DataLossError(absl::StrCat("the best model's tensor ", i, " is missing"));
    }
    if (t.sizes() != live[i].sizes()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the best model's tensor ", i, " is ", c10::str(t.sizes()),
                       " there and ", c10::str(live[i].sizes()), " here"));
    }
    loaded.push_back(t.to(live[i].options()));
  }
  best_ = std::move(loaded);
  step_ = step.item<int64_t>();
  score_ = score.item<double>();
  return absl::OkStatus();
}

}  // namespace experiments
}  // namespace indexgrad
