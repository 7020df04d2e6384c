// Mask recovery of Shekhar et al. 2023, section 3 / figure 1: a mask
// operator learns a hidden target mask from nothing but the oracle's MSE.
// Writes, under --out_dir:
//   runs/<operator>_<target>_s<seed>.csv   per step: mse; at evaluation
//                                          steps IoU and pixel accuracy of
//                                          the mask thresholded at 0.5, and
//                                          the IoU of the pixels its K
//                                          indices stand for (index_iou)
//   masks/<operator>_<target>_s<seed>_<step>.csv  snapshots (and _target)
//   summary.csv, summary.md, masks.png (tools/plot.py)
//
//   bazel run //experiments:mask_recovery
//   bazel run //experiments:mask_recovery -- --targets=left_half --size=64
// (The flags: experiments/mask_recovery_flags.cc.)
#include <cstdio>

#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "experiments/common/csv.h"
#include "experiments/common/main.h"
#include "experiments/common/summary.h"
#include "experiments/common/threads.h"
#include "experiments/mask_recovery_flags.h"
#include "experiments/mask_recovery_run.h"

namespace {

namespace ig = indexgrad;

absl::Status Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Recovers hidden masks through an MSE-only oracle with differentiable "
      "mask operators (Shekhar et al. 2023).");
  absl::ParseCommandLine(argc, argv);
  if (absl::StatusOr<int> threads = ig::experiments::ApplyThreadsFlag(); !threads.ok()) {
    return threads.status();
  }
  auto setup = ig::experiments::MaskRecoverySetupFromFlags();
  if (!setup.ok()) return setup.status();
  auto summary_csv = ig::experiments::CsvWriter::Open(
      setup->out_dir + "/summary.csv",
      {"operator", "target", "seed", "final_iou", "final_accuracy",
       "final_index_iou", "final_mse", "steps_to_iou_0.99", "seconds"});
  if (!summary_csv.ok()) return summary_csv.status();
  std::vector<ig::experiments::MaskRunSummary> runs;
  for (const std::string& op_name : setup->ops) {
    for (const ig::experiments::MaskTarget& target : setup->targets) {
      for (int64_t seed = 0; seed < ig::experiments::SeedsFromFlags(); ++seed) {
        auto r = ig::experiments::RunMaskRecovery(*setup, op_name, target, seed);
        if (!r.ok()) return r.status();
        summary_csv->TextRow({r->op, r->target, absl::StrCat(r->seed),
                              absl::StrCat(r->iou), absl::StrCat(r->accuracy),
                              absl::StrCat(r->index_iou), absl::StrCat(r->mse),
                              absl::StrCat(r->steps_to_099), absl::StrCat(r->seconds)});
        runs.push_back(*r);
      }
    }
  }
  const std::string md = ig::experiments::MaskRecoverySummaryMarkdown(*setup, runs);
  if (auto st = ig::experiments::WriteSummaryMarkdown(setup->out_dir, md); !st.ok()) {
    return st;
  }
  if (ig::experiments::PlotFromFlags()) {
    if (auto st = ig::experiments::RunPlot("masks", setup->out_dir); !st.ok()) {
      std::fprintf(stderr, "mask_recovery: %s\n", std::string(st.message()).c_str());
    }
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  return indexgrad::experiments::RunMain("mask_recovery", Main, argc, argv);
}
