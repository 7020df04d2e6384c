// The mask-recovery experiment (//experiments:mask_recovery; Shekhar et al.
// 2023, section 3 / figure 1) as a library: targets, the runs' setup, one
// run of an operator on a target, the summary table. Shared by the main
// (flags -> MaskRecoverySetup -> RunMaskRecovery -> summary) and its test.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "diff_masks/operator_factory.h"
#include "diff_masks/oracle.h"

namespace indexgrad {
namespace experiments {

// A target of --targets: a built-in kind, or a user's mask from a file.
struct MaskTarget {
  std::string name;  // in file names and tables
  diff_masks::TargetKind kind = diff_masks::TargetKind::kLeftHalf;
  at::Tensor mask;   // defined for file:PATH
  std::string path;
};

// One entry of --targets: left_half, random, disc, digit, or file:PATH (an
// image of size x size pixels; a relative path is the user's, UserPath).
absl::StatusOr<MaskTarget> ParseMaskTarget(absl::string_view entry, int64_t size);

// Everything the runs need (the main fills it from its flags and checks it).
struct MaskRecoverySetup {
  int64_t size = 32, steps = 2000, snap_every = 500, eval_every = 50, random_pixels = 256;
  std::vector<std::string> ops;
  std::vector<MaskTarget> targets;
  at::Tensor digit;  // for the digit target
  diff_masks::MaskOperatorFactory factory;
  diff_masks::OperatorSettings settings;
  std::map<std::string, double> learning_rates;  // per operator name
  bool resume = true;
  std::string out_dir;  // with runs/ and masks/ made
  c10::Device device = c10::kCPU;
};

struct MaskRunSummary {
  std::string op, target;
  int64_t seed = 0, steps_to_099 = -1;  // first evaluation step at IoU >= 0.99; -1: none
  double iou = 0, accuracy = 0, index_iou = 0, mse = 0, seconds = 0;
};

// One run: operator op_name learns the target from its oracle for
// s.steps (resuming from its checkpoint when s.resume). Writes
// runs/<op>_<target>_s<seed>.csv and .ckpt, masks/..._<step>.csv snapshots
// and the target.
absl::StatusOr<MaskRunSummary> RunMaskRecovery(const MaskRecoverySetup& s,
                                               const std::string& op_name,
                                               const MaskTarget& target, int64_t seed);

// summary.md: per (operator, target), the final IoU of the rendered mask
// and of the learned indices for every seed, steps to IoU 0.99, the MSE.
std::string MaskRecoverySummaryMarkdown(const MaskRecoverySetup& s,
                                        const std::vector<MaskRunSummary>& runs);

}  // namespace experiments
}  // namespace indexgrad
