// The attention experiment (//experiments:cluttered_attention; Bloem et al.
// 2018 section 3.2, Table 1): on cluttered MNIST, with the same data and
// budget,
//   sparse1   sparse-hyperlayer attention, one 32 x 32 glimpse
//   sparse8   sparse-hyperlayer attention, eight 12 x 12 glimpses
//   ram       the Recurrent Attention Model (8 glimpses, 4 scales)
//   convnet   the source network with a classification head (no attention)
//   oracle    sparse1's classifier on a 32 x 32 crop centred on the digit's
//             recorded position (perfect localisation; a reference, not a
//             method: it reads the answer to where the digit is)
//   oracle_sampled  the same window read as sparse1 reads its glimpse
//             (sampled, learned variance)
// Presets:
//   default   60 x 60 canvas with 4 distractors (the other standard
//             setting), 6,000 training images, 3 epochs, batch 32, Adam lr
//             1e-3, the source network at a quarter of its channels and 128
//             hidden units; 500 validation and 1,000 test images (minutes on
//             2 CPU cores; far from converged)
//   paper     100 x 100 canvas with 8 distractors, 60,000 training images,
//             70 epochs, batch 128, lr 1e-4, the paper's source network;
//             5,000 validation, 10,000 test images
// Shared by the main and its test.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
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

// Images as the models take them: uint8 [N, side, side] -> float [N, 1,
// side, side] in [0, 1].
at::Tensor ToModelImages(const at::Tensor& bytes);

struct AttentionData {
  data::ClutteredSet train, validation, test;  // already cut to the preset's sizes
  // The MNIST training digits (uint8 [M, 28, 28], int64 [M]): needed only
  // with fresh_clutter.
  at::Tensor train_digits, train_digit_labels;
};

// The preset's three splits from `data_dir` (generated there first when
// missing and `generate`; otherwise an error naming the file and the command
// that makes it), cut to the preset's sizes; with fresh_clutter also the
// MNIST training digits.
absl::StatusOr<AttentionData> LoadAttentionData(const std::string& data_dir,
                                                const AttentionPreset& p, bool generate);

struct AttentionRunResult {
  std::string method;
  int64_t steps_done = 0;
  double epochs = 0;           // steps_done in epochs of the training set
  double seconds = 0;          // training wall time (resumed parts included)
  double seconds_per_epoch = 0;
  double validation_error = 0; // fraction, at the end
  double test_error = 0;
  double final_loss = 0;
  // The model of the best validation error among this run's evaluations
  // (held in memory: a run resumed from a checkpoint only knows the
  // evaluations after the resume; none at all: the final model).
  int64_t best_step = 0;
  double best_validation_error = 0, best_test_error = 0;
  double train_error = NAN;  // preset.train_error: on the training images; else NaN
  // Localisation on the test images (evaluation mode; NaN for the ConvNet,
  // and for an empty group): the fraction whose digit centre lies in one of
  // the model's boxes (RAM: its finest patches), and the error rate among
  // those and among the rest.
  double box_hit_rate = NAN, error_given_hit = NAN, error_given_miss = NAN;
};

// Crops [N, C, size, size] of images [N, C, S, S] centred on each digit: the
// 28 x 28 digit's top-left is positions[i] (integer [N, 2], row, column, in
// [0, S - 28]); crop i's rows start at positions[i][0] + 14 - size / 2 (and
// its columns likewise), zeros outside the image. The oracle's input.
at::Tensor DigitCrops(const at::Tensor& images, const at::Tensor& positions, int64_t size);

// The size x size window DigitCrops cuts around each digit, as boxes [N, 4]
// double (y0, x0, y1, x1 in pixels): (row, column) + 14 - size / 2, and
// + size - 1 for the far corner; not clipped to the image.
at::Tensor DigitWindowBoxes(const at::Tensor& positions, int64_t size);

// The raw box values (before sparse_hyper::GlimpseBoxes' sigmoid) of the
// size x size window DigitCrops cuts, [N, 1, 4] double: its corners (y0, x0,
// y1, x1) = (row, column) + 14 - size / 2 and + size - 1, each kept in
// [0.5, side - 1.5] (the sigmoid's range is open), so a window past an
// edge is squeezed in. The sampled oracle's box.
at::Tensor DigitWindowRawBoxes(const at::Tensor& positions, int64_t size, int64_t side);

// Whether the digit centre, position + 13.5 px (the 28 x 28 digit's top-left
// [N, 2] (row, column)), lies in at least one of the boxes [N, g, 4] (y0, x0,
// y1, x1 in pixels, corners in either order, edges included): bool [N].
at::Tensor DigitCentreInBox(const at::Tensor& boxes, const at::Tensor& positions);

// Trains `method` under `preset` with `seed`; writes <run_dir>/<method>.csv
// and .ckpt (resumed when present and `resume`), and
// <run_dir>/<method>_glimpses.csv: the first 8 test images, the learned
// boxes (RAM: its 12 x 12 patches) and the glimpse contents, for
// tools/plot.py attention.
absl::StatusOr<AttentionRunResult> RunAttention(const std::string& method,
                                                const AttentionPreset& preset,
                                                const AttentionData& data, int64_t seed,
                                                const std::string& run_dir, bool resume,
                                                const c10::Device& device = c10::kCPU);

// summary.csv: its columns, and one run's row.
std::vector<std::string> AttentionSummaryColumns();
std::vector<std::string> AttentionSummaryRow(const AttentionRunResult& r);

// Markdown table: method, error on validation and test, epochs, time per
// epoch, the best validation model's errors (and the training-set error when
// measured).
std::string AttentionSummaryMarkdown(const AttentionPreset& preset,
                                     const std::vector<AttentionRunResult>& runs);

}  // namespace experiments
}  // namespace indexgrad
