#include "experiments/mask_recovery_run.h"

#include <torch/optim/adam.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "diff_masks/mask_image.h"
#include "diff_masks/mask_operator.h"
#include "diff_masks/optimizer_state.h"
#include "experiments/common/csv.h"
#include "experiments/common/summary.h"
#include "experiments/common/train_loop.h"

namespace indexgrad {
namespace experiments {

namespace dm = diff_masks;

namespace {

void WriteMask(const std::string& path, const at::Tensor& mask) {
  std::ofstream out(path);
  const at::Tensor m = mask.detach().cpu().to(at::kFloat).contiguous();
  auto a = m.accessor<float, 2>();
  for (int64_t y = 0; y < m.size(0); ++y) {
    for (int64_t x = 0; x < m.size(1); ++x) out << (x ? "," : "") << a[y][x];
    out << "\n";
  }
}

}  // namespace

absl::StatusOr<MaskTarget> ParseMaskTarget(absl::string_view entry, int64_t size) {
  MaskTarget t;
  if (absl::ConsumePrefix(&entry, "file:")) {
    if (entry.empty()) {
      return absl::InvalidArgumentError("file: needs a path (file:PATH)");
    }
    t.path = UserPath(std::string(entry));
    auto mask = dm::LoadMaskImage(t.path);
    if (!mask.ok()) return mask.status();
    if (mask->size(0) != size || mask->size(1) != size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "mask file ", t.path, " is ", mask->size(0), " x ", mask->size(1),
          " pixels, but --size is ", size, " (masks are --size x --size)"));
    }
    t.mask = *mask;
    std::string stem = t.path.substr(t.path.find_last_of('/') + 1);
    stem = stem.substr(0, stem.find('.'));
    for (char& c : stem) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '-';
    }
    t.name = "file-" + stem;
    return t;
  }
  auto kind = dm::ParseTargetKind(std::string(entry));
  if (!kind.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        kind.status().message(), " (or file:PATH for a mask image)"));
  }
  t.kind = *kind;
  t.name = dm::TargetKindName(*kind);
  return t;
}

absl::StatusOr<MaskRunSummary> RunMaskRecovery(const MaskRecoverySetup& s,
                                               const std::string& op_name,
                                               const MaskTarget& target, int64_t seed) {
  auto oracle = target.mask.defined()
                    ? dm::MaskOracle::FromMask(target.mask, target.path)
                    : dm::MaskOracle::Create(target.kind, s.size, s.size, seed,
                                             s.random_pixels, s.digit);
  if (!oracle.ok()) return oracle.status();
  const std::string name = absl::StrFormat("%s_%s_s%d", op_name, target.name, seed);
  WriteMask(s.out_dir + "/masks/" + name + "_target.csv", dm::TargetForFigures(*oracle));
  at::manual_seed(1000 + seed);
  auto made = s.factory.Make(op_name, s.size, s.size, oracle->target_pixels(), s.settings);
  if (!made.ok()) return made.status();
  const std::shared_ptr<dm::MaskOperator> op = *made;
  op->to(s.device);  // before the optimizer takes the parameters
  const double lr = s.learning_rates.at(op_name);
  torch::optim::Adam adam(op->parameters(), torch::optim::AdamOptions(lr).eps(op->AdamEpsilon()));
  TrainLoopOptions loop;
  loop.label = "mask " + name;
  loop.steps = s.steps;
  loop.eval_every = s.eval_every;
  loop.checkpoint_every = 500;
  loop.checkpoint_path = s.out_dir + "/runs/" + name + ".ckpt";
  loop.resume = s.resume;
  loop.csv_path = s.out_dir + "/runs/" + name + ".csv";
  loop.train_columns = {"mse"};
  loop.eval_columns = {"iou", "accuracy", "index_iou"};
  auto result = RunTrainLoop(
      loop, *op, adam,
      [&](int64_t step) {
        op->SetProgress(step, s.steps);
        SetLearningRate(adam, op->LearningRate(step, s.steps, lr));
        const at::Tensor mask = op->Mask();
        const at::Tensor mse = oracle->Mse(mask);
        adam.zero_grad();
        op->Objective(mse).backward();
        adam.step();
        op->AfterStep();
        dm::RestartMoments(*op, adam);
        const int64_t done = step + 1;
        if (done % s.snap_every == 0 || done == 1) {
          WriteMask(absl::StrFormat("%s/masks/%s_%06d.csv", s.out_dir, name, done), mask);
        }
        return std::vector<double>{mse.item<double>()};
      },
      [&](int64_t steps_done, bool* stop) {
        *stop = false;
        op->SetProgress(steps_done, s.steps);  // a resumed operator's schedule too
        const dm::MaskScores score = oracle->Score(op->Mask());
        return std::vector<double>{score.iou, score.accuracy,
                                   oracle->IndexIoU(op->Indices())};
      });
  if (!result.ok()) return result.status();
  // From the CSV, so that resumed runs count their earlier steps.
  auto steps_to_099 = FirstStepAtLeast(loop.csv_path, "iou", 0.99);
  if (!steps_to_099.ok()) return steps_to_099.status();
  auto eval = [&](size_t i) {
    return result->last_eval.size() > i ? result->last_eval[i] : NAN;
  };
  return MaskRunSummary{op_name, target.name, seed, *steps_to_099,
                    eval(0), eval(1), eval(2),
                    result->last_train.empty() ? NAN : result->last_train[0],
                    result->seconds};
}

std::string MaskRecoverySummaryMarkdown(const MaskRecoverySetup& s,
                                        const std::vector<MaskRunSummary>& runs) {
  std::vector<std::vector<std::string>> rows;
  for (const std::string& op_name : s.ops) {
    for (const MaskTarget& target : s.targets) {
      std::string ious, index_ious, reach;
      double secs = 0, mse = 0;
      int count = 0;
      for (const MaskRunSummary& r : runs) {
        if (r.op != op_name || r.target != target.name) continue;
        absl::StrAppendFormat(&ious, "%s%.3f", ious.empty() ? "" : ", ", r.iou);
        absl::StrAppendFormat(&index_ious, "%s%.3f", index_ious.empty() ? "" : ", ",
                              r.index_iou);
        absl::StrAppend(&reach, reach.empty() ? "" : ", ",
                        r.steps_to_099 > 0 ? absl::StrCat(r.steps_to_099) : "no");
        secs += r.seconds;
        mse += r.mse;
        ++count;
      }
      rows.push_back({op_name, target.name, ious, index_ious, reach,
                      absl::StrFormat("%.4f", count ? mse / count : 0.0),
                      absl::StrFormat("%.1f", count ? secs / count : 0.0)});
    }
  }
  return MarkdownTable(
      {"operator", "target", "final IoU (per seed)", "final index IoU (per seed)",
       "steps to IoU 0.99", "final MSE (mean)", "wall time per run (s)"},
      rows);
}

}  // namespace experiments
}  // namespace indexgrad
