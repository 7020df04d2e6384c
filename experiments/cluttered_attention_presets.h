// The attention experiment's presets and flag overrides
// (//experiments:cluttered_attention). Presets:
//   default   60 x 60 canvas with 4 distractors (the other standard
//             setting), 6,000 training images, 3 epochs, batch 32, Adam lr
//             1e-3, the source network at a quarter of its channels and 128
//             hidden units; 500 validation and 1,000 test images (minutes on
//             2 CPU cores; far from converged)
//   paper     100 x 100 canvas with 8 distractors, 60,000 training images,
//             70 epochs, batch 128, lr 1e-4, the paper's source network;
//             5,000 validation, 10,000 test images
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "datasets/cluttered_mnist.h"

namespace indexgrad {
namespace experiments {

// Every method's name, in the order a run takes them.
const std::vector<std::string>& AttentionMethods();

struct AttentionPreset {
  std::vector<std::string> methods = AttentionMethods();
  data::ClutterOptions data = {/*canvas=*/60, /*distractors=*/4};
  int64_t train_size = 6000;
  int64_t val_size = 500;
  int64_t test_size = 1000;
  int64_t epochs = 3;
  int64_t batch = 32;
  double lr = 1e-3;
  int64_t warmup_steps = 200;  // lr rises linearly over these (our choice)
  // > 0: from this epoch on the learning rate is lr * lr_decay_factor (a
  // step decay; both presets: none).
  int64_t lr_decay_epoch = 0;
  double lr_decay_factor = 0.1;
  double box_penalty = 0.01;   // weight of sparse_hyper::BoxSaturationPenalty (our choice)
  double source_width = 0.25;
  int64_t source_hidden = 128;
  // The sparse models' and oracles' classifier: glimpses -> this many ReLU
  // units -> 10 (the paper's 128, both presets).
  int64_t classifier_hidden = 128;
  double initial_variance = 0;  // glimpses' starting variance, px^2 (0: the paper's)
  // Sparse models' evaluations: the mean of this many sampled glimpses (0:
  // pixels at the rounded positions); sparse_hyper::GlimpseOptions. Both
  // presets: 1 (our choice: 8 draws cost 4 times the evaluation time and
  // moved a paper-preset checkpoint by 0.25 points of test error).
  int64_t glimpse_eval_samples = 1;
  double ram_location_std = 0.4;  // RAM's Gaussian policy std, in [-1, 1] image units
  // > 0: the std falls geometrically from ram_location_std to this over the
  // run (training samples; evaluation takes the means); 0: constant.
  double ram_location_std_end = 0;
  std::string ram_init = "irnn";  // baselines::RamOptions::init
  std::string ram_policy = "head";  // baselines::RamOptions::policy
  double ram_reinforce_weight = 1;  // baselines::RamLossOptions::reinforce_weight
  // baselines::RamLossOptions::samples: trajectories per training image (our
  // choice, both presets: 8; Mnih et al.'s estimate averages M episodes and
  // does not give M).
  int64_t ram_samples = 8;
  std::string ram_reward = "correct";  // baselines::RamLossOptions::reward
  // > 1: RAM's evaluations average the class probabilities of this many
  // sampled trajectories per image (a generator of their own, seeded the
  // same every time); 1: the policy's means. Both presets: 8 (our choice).
  int64_t ram_eval_samples = 8;
  // New clutter every epoch: epoch e >= 1 trains on train_size fresh images
  // (MakeCluttered stream 1000 + e: new digits, positions and distractors
  // from the same 55,000 training digits); epoch 0 on the stored set.
  bool fresh_clutter = false;
  // Also the final model's error on the stored training images (evaluation
  // mode; with fresh_clutter, epoch 0's set). Both presets: off.
  bool train_error = false;
  int64_t evals_per_epoch = 1;
};

// "default" or "paper".
absl::StatusOr<AttentionPreset> AttentionPresetNamed(const std::string& name);

// Flag values; "unset" is empty or negative, as the flags' defaults.
struct AttentionFlagOverrides {
  std::string methods, ram_init, ram_policy, ram_reward;
  bool fresh_clutter = false;  // true: on (both presets: off)
  bool train_error = false;    // true: on (both presets: off)
  int64_t canvas = -1, distractors = -1, train_size = -1, val_size = -1, test_size = -1,
          epochs = -1, batch = -1, source_hidden = -1, classifier_hidden = -1,
          evals_per_epoch = -1, warmup_steps = -1,
          ram_samples = -1, ram_eval_samples = -1, glimpse_eval_samples = -1,
          lr_decay_epoch = -1;
  double lr = -1, lr_decay_factor = -1, source_width = -1, initial_variance = -1, box_penalty = -1,
         ram_location_std = -1, ram_location_std_end = -1, ram_reinforce_weight = -1;
};

// Applies and checks the overrides; an error names the flag and the value.
absl::Status ApplyAttentionOverrides(const AttentionFlagOverrides& o, AttentionPreset* p);

std::string DescribeAttentionPreset(const AttentionPreset& p);

// The learning rate of training step `step` (0-based) with `steps_per_epoch`:
// the linear warmup, then lr, times lr_decay_factor from lr_decay_epoch on.
// A function of the step alone, so a resumed run follows the same schedule.
double AttentionLearningRate(const AttentionPreset& p, int64_t step, int64_t steps_per_epoch);

}  // namespace experiments
}  // namespace indexgrad
