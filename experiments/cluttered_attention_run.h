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
// The models are in sparse_hyper/attention_model.h and baselines/
// ram_model.h; the presets in cluttered_attention_presets.h; evaluation in
// cluttered_attention_eval.h. This file: data, one run, the summary. Shared
// by the main and its test.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "datasets/cluttered_mnist.h"
#include "experiments/cluttered_attention_presets.h"

namespace indexgrad {
namespace experiments {

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
