#include "experiments/cluttered_attention_run.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/adam.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "baselines/ram_model.h"
#include "experiments/cluttered_attention_eval.h"
#include "experiments/common/summary.h"
#include "experiments/common/train_loop.h"
#include "sparse_hyper/attention.h"
#include "sparse_hyper/attention_model.h"

namespace indexgrad {
namespace experiments {

namespace sh = sparse_hyper;
using sh::AttentionModel;

namespace {

absl::StatusOr<std::shared_ptr<AttentionModel>> MakeModel(const std::string& method,
                                                          const AttentionPreset& p,
                                                          int64_t seed) {
  const int64_t side = p.data.canvas;
  // The sparse models' options (one glimpse of 32 x 32, or eight of 12 x 12).
  const auto sparse = [&](bool one) {
    return sh::SparseAttentionOptions()
        .side(side)
        .glimpses(one ? 1 : 8)
        .glimpse_size(one ? 32 : 12)
        .source_width(p.source_width)
        .source_hidden(p.source_hidden)
        .classifier_hidden(p.classifier_hidden)
        .initial_variance(p.initial_variance)
        .eval_samples(p.glimpse_eval_samples)
        .seed(seed);
  };
  if (method == "sparse1" || method == "sparse8") {
    return std::shared_ptr<AttentionModel>(
        std::make_shared<sh::SparseAttentionModel>(sparse(method == "sparse1"), p.box_penalty));
  }
  if (method == "ram") {
    return std::shared_ptr<AttentionModel>(std::make_shared<baselines::RamModel>(
        baselines::RamOptions()
            .side(side)
            .scales(side > 60 ? 4 : 3)
            .location_std(p.ram_location_std)
            .init(p.ram_init)
            .policy(p.ram_policy),
        baselines::RamLossOptions()
            .reinforce_weight(p.ram_reinforce_weight)
            .samples(p.ram_samples)
            .reward(p.ram_reward),
        p.ram_location_std_end, p.ram_eval_samples));
  }
  if (method == "convnet") {
    return std::shared_ptr<AttentionModel>(std::make_shared<sh::ConvNetModel>(
        sh::SourceNetworkOptions()
            .side(side)
            .width(p.source_width)
            .hidden(p.source_hidden)
            .outputs(10)));
  }
  if (method == "oracle" || method == "oracle_sampled") {
    return std::shared_ptr<AttentionModel>(
        std::make_shared<sh::OracleModel>(sparse(/*one=*/true), method == "oracle_sampled"));
  }
  const std::vector<std::string>& all = AttentionMethods();
  return absl::InvalidArgumentError(
      absl::StrCat("method must be ", absl::StrJoin(all.begin(), all.end() - 1, ", "), " or ",
                   all.back(), ", got '", method, "'"));
}

// The training loop's settings: `per_epoch` steps an epoch, evaluations
// (and checkpoints) evals_per_epoch times an epoch.
TrainLoopOptions AttentionLoopOptions(const std::string& method, const AttentionPreset& p,
                                      int64_t per_epoch, const std::string& run_dir, bool resume) {
  TrainLoopOptions loop;
  loop.label = absl::StrFormat("cluttered_attention %s", method);
  loop.steps = per_epoch * p.epochs;
  loop.eval_every = std::max<int64_t>(1, per_epoch / p.evals_per_epoch);
  loop.checkpoint_every = loop.eval_every;
  loop.checkpoint_path = absl::StrCat(run_dir, "/", method, ".ckpt");
  loop.resume = resume;
  loop.csv_path = absl::StrCat(run_dir, "/", method, ".csv");
  loop.train_columns = {"loss", "batch_error"};
  loop.eval_columns = {"val_error"};
  return loop;
}

// The run's result: the final model's errors and localisation, and those of
// the best validation model when it is another.
AttentionRunResult Evaluate(const std::string& method, const AttentionPreset& p,
                            const AttentionData& data, const TrainResult& r, int64_t per_epoch,
                            AttentionModel& model, BestModel& best, const c10::Device& device) {
  AttentionRunResult result;
  result.method = method;
  result.steps_done = r.steps_done;
  result.epochs = double(r.steps_done) / double(per_epoch);
  result.seconds = r.seconds;
  result.seconds_per_epoch = r.steps_done > 0 ? r.seconds * per_epoch / r.steps_done : 0;
  result.final_loss = r.last_train.empty() ? NAN : r.last_train[0];
  result.validation_error = ErrorRate(model, data.validation, device);
  const at::Tensor wrong_on_test = WrongPredictions(model, data.test, device);
  result.test_error = Fraction(wrong_on_test);
  result.best_step = r.steps_done;
  result.best_validation_error = result.validation_error;
  result.best_test_error = result.test_error;
  if (best.has_best() && best.step() != r.steps_done) {
    // The glimpse figure and the checkpoint stay the final model's.
    best.WithBest([&] {
      result.best_step = best.step();
      result.best_validation_error = ErrorRate(model, data.validation, device);
      result.best_test_error = ErrorRate(model, data.test, device);
    });
  }
  if (p.train_error) result.train_error = ErrorRate(model, data.train, device);
  MeasureLocalisation(model, data.test, wrong_on_test, device, &result);
  return result;
}

}  // namespace

at::Tensor ToModelImages(const at::Tensor& bytes) {
  return bytes.to(at::kFloat).div_(255.0f).unsqueeze(1);
}

absl::StatusOr<AttentionData> LoadAttentionData(const std::string& data_dir,
                                                const AttentionPreset& p, bool generate) {
  AttentionData data;
  for (auto [split, size, target] :
       {std::make_tuple(data::Split::kTrain, p.train_size, &data.train),
        std::make_tuple(data::Split::kValidation, p.val_size, &data.validation),
        std::make_tuple(data::Split::kTest, p.test_size, &data.test)}) {
    absl::StatusOr<data::ClutteredSet> set = data::LoadCluttered(data_dir, p.data, split, generate);
    if (!set.ok()) return set.status();
    target->images = set->images.slice(0, 0, size);
    target->labels = set->labels.slice(0, 0, size);
    target->positions = set->positions.slice(0, 0, size);
  }
  if (p.fresh_clutter) {
    auto mnist = data::LoadImageSet(data_dir, "mnist", data::Split::kTrain);
    if (!mnist.ok()) return mnist.status();
    data.train_digits = (mnist->images * 255.0f).round_().to(at::kByte);
    data.train_digit_labels = mnist->labels;
  }
  return data;
}

absl::StatusOr<AttentionRunResult> RunAttention(const std::string& method,
                                                const AttentionPreset& p,
                                                const AttentionData& data, int64_t seed,
                                                const std::string& run_dir, bool resume,
                                                const c10::Device& device) {
  at::manual_seed(seed);
  absl::StatusOr<std::shared_ptr<AttentionModel>> made = MakeModel(method, p, seed);
  if (!made.ok()) return made.status();
  AttentionModel& model = **made;
  model.to(device);  // before the optimizer takes the parameters
  if (p.fresh_clutter && !data.train_digits.defined()) {
    return absl::InvalidArgumentError(
        "--fresh_clutter needs the MNIST training digits (AttentionData::train_digits)");
  }
  data::ClutteredSet train = data.train;  // replaced every epoch with fresh_clutter
  torch::optim::Adam adam(model.parameters(), torch::optim::AdamOptions(p.lr));
  const int64_t n = data.train.images.size(0);
  const int64_t per_epoch = (n + p.batch - 1) / p.batch;

  TrainLoopOptions loop = AttentionLoopOptions(method, p, per_epoch, run_dir, resume);
  BestModel best(model);  // of the validation error; kept in the checkpoint
  loop.best = &best;

  // A fixed permutation per epoch (seeded by the epoch: resumes see the same).
  int64_t perm_epoch = -1;
  at::Tensor perm;
  absl::StatusOr<TrainResult> r = RunTrainLoop(
      loop, model, adam,
      [&](int64_t step) {
        const int64_t epoch = step / per_epoch, i = step % per_epoch;
        if (epoch != perm_epoch) {
          at::Generator gen = at::detail::createCPUGenerator(seed * 100003 + epoch);
          perm = at::randperm(n, gen);
          perm_epoch = epoch;
          if (p.fresh_clutter) {
            absl::StatusOr<data::ClutteredSet> fresh =
                epoch == 0 ? absl::StatusOr<data::ClutteredSet>(data.train)
                           : data::MakeCluttered(data.train_digits, data.train_digit_labels, n,
                                                 p.data, 1000 + epoch);
            TORCH_CHECK(fresh.ok(), "fresh clutter for epoch ", epoch, ": ",
                        std::string(fresh.status().message()));
            train = *fresh;
          }
        }
        const at::Tensor idx = perm.slice(0, i * p.batch, std::min(n, (i + 1) * p.batch));
        const at::Tensor images = ToModelImages(train.images.index_select(0, idx)).to(device);
        const at::Tensor labels = train.labels.index_select(0, idx).to(device);
        model.SetProgress(step, loop.steps);
        const auto [loss, logits] =
            model.Loss(images, train.positions.index_select(0, idx), labels);
        SetLearningRate(adam, AttentionLearningRate(p, step, per_epoch));
        adam.zero_grad();
        loss.backward();
        adam.step();
        const double batch_error =
            logits.detach().argmax(1).ne(labels).to(at::kDouble).mean().item<double>();
        return std::vector<double>{loss.item<double>(), batch_error};
      },
      [&](int64_t steps_done, bool*) {
        const double val = ErrorRate(model, data.validation, device);
        best.Offer(val, steps_done);
        return std::vector<double>{val};
      });
  if (!r.ok()) return r.status();
  AttentionRunResult result = Evaluate(method, p, data, *r, per_epoch, model, best, device);
  if (absl::Status st = WriteGlimpseFigure(model, data.test,
                                           absl::StrCat(run_dir, "/", method, "_glimpses.csv"), device);
      !st.ok()) {
    return st;
  }
  return result;
}

namespace {

// summary.csv's (column, value) pairs of a run, in column order.
std::vector<std::pair<std::string, std::string>> SummaryFields(const AttentionRunResult& r) {
  return {{"method", r.method},
          {"steps", absl::StrCat(r.steps_done)},
          {"epochs", absl::StrCat(r.epochs)},
          {"val_error", absl::StrCat(r.validation_error)},
          {"test_error", absl::StrCat(r.test_error)},
          {"final_loss", absl::StrCat(r.final_loss)},
          {"seconds", absl::StrCat(r.seconds)},
          {"seconds_per_epoch", absl::StrCat(r.seconds_per_epoch)},
          {"best_step", absl::StrCat(r.best_step)},
          {"best_val_error", absl::StrCat(r.best_validation_error)},
          {"best_test_error", absl::StrCat(r.best_test_error)},
          {"train_error", absl::StrCat(r.train_error)},
          {"box_hit_rate", absl::StrCat(r.box_hit_rate)},
          {"error_given_hit", absl::StrCat(r.error_given_hit)},
          {"error_given_miss", absl::StrCat(r.error_given_miss)}};
}

}  // namespace

std::vector<std::string> AttentionSummaryColumns() {
  std::vector<std::string> columns;
  for (const auto& [column, value] : SummaryFields(AttentionRunResult())) columns.push_back(column);
  return columns;
}

std::vector<std::string> AttentionSummaryRow(const AttentionRunResult& r) {
  std::vector<std::string> row;
  for (const auto& [column, value] : SummaryFields(r)) row.push_back(value);
  return row;
}

std::string AttentionSummaryMarkdown(const AttentionPreset& p,
                                     const std::vector<AttentionRunResult>& runs) {
  bool any_train = false;
  for (const AttentionRunResult& r : runs) any_train |= !std::isnan(r.train_error);
  std::vector<std::vector<std::string>> rows;
  for (const AttentionRunResult& r : runs) {
    rows.push_back({r.method, absl::StrFormat("%.2f %%", 100 * r.validation_error),
                    absl::StrFormat("%.2f %%", 100 * r.test_error),
                    absl::StrFormat("%.2f", r.epochs), absl::StrFormat("%.1f", r.seconds_per_epoch),
                    absl::StrFormat("%.2f %% (%d)", 100 * r.best_validation_error, r.best_step),
                    absl::StrFormat("%.2f %%", 100 * r.best_test_error)});
    if (any_train) rows.back().push_back(absl::StrFormat("%.2f %%", 100 * r.train_error));
    rows.back().push_back(std::isnan(r.box_hit_rate)
                              ? std::string("-")
                              : absl::StrFormat("%.1f %% (%.2f %% / %.2f %%)", 100 * r.box_hit_rate,
                                                100 * r.error_given_hit, 100 * r.error_given_miss));
  }
  std::vector<std::string> header = {"method",   "validation error", "test error",
                                     "epochs",   "s / epoch",        "best validation error (step)",
                                     "test error there"};
  if (any_train) header.push_back("training-set error");
  header.push_back("digit centre in a box (test error there / elsewhere)");
  return absl::StrCat("Budget: ", DescribeAttentionPreset(p), ".\n\n", MarkdownTable(header, rows));
}

}  // namespace experiments
}  // namespace indexgrad

