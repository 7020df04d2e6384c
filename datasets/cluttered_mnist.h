// Cluttered MNIST (Mnih et al. 2014; Bloem et al. 2018 section 3.2), made
// the way DeepMind's mnist-cluttered makes it: a black canvas; `distractors`
// times, an 8 x 8 crop at a uniform position of a uniformly drawn digit of
// the same split, added at a uniform position of the canvas and clipped to
// 1; then the 28 x 28 digit added at a uniform position, clipped to [0, 1].
// Pixels are bytes throughout (MNIST's own), so the sums are exact.
//
//   ClutterOptions o;                       // 100 x 100, 8 distractors
//   absl::StatusOr<ClutteredSet> s = LoadCluttered(DefaultDataDir(), o,
//                                                  Split::kTrain, /*generate=*/true);
//
// Image i of a split depends only on (seed, split, i), so the first N images
// are the same whatever the split's size. Splits, each from its own MNIST
// digits (datasets/idx.h):
//   kTrain       60,000 images from the 55,000 MNIST training digits
//   kValidation   5,000 images from the 5,000 MNIST validation digits
//   kTest        10,000 images from the 10,000 MNIST test digits
// Files, under <data_dir>/cluttered-mnist-<canvas>-<distractors>/:
//   {train,validation,test}-images-idx3-ubyte     [N, canvas, canvas]
//   {train,validation,test}-labels-idx1-ubyte     [N]
//   {train,validation,test}-positions-idx2-ubyte  [N, 2] digit's top-left
//                                                 (row, column)
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "datasets/idx.h"

namespace indexgrad {
namespace data {

struct ClutterOptions {
  int64_t canvas = 100;        // square canvas side, 28..255
  int64_t distractors = 8;     // 60 x 60 with 4 is the other standard setting
  int64_t distractor_size = 8; // side of the distractor crops, 1..28
  int64_t seed = 0;
};

struct ClutteredSet {
  at::Tensor images;     // [N, canvas, canvas] uint8
  at::Tensor labels;     // [N] int64
  at::Tensor positions;  // [N, 2] int64: the digit's top-left (row, column)
  // Only from MakeCluttered (not stored in files): indices into its digits.
  at::Tensor digit_index;       // [N]
  at::Tensor distractor_index;  // [N, distractors]
};

// Checks the options; an error names the field and the value.
absl::Status CheckClutterOptions(const ClutterOptions& options);

// `count` images from `digits` [M, 28, 28] uint8 and `labels` [M]; `stream`
// separates splits (image i of stream s is the same for any count).
absl::StatusOr<ClutteredSet> MakeCluttered(const at::Tensor& digits,
                                           const at::Tensor& labels, int64_t count,
                                           const ClutterOptions& options,
                                           int64_t stream);

// Images per split (above).
int64_t ClutteredSplitSize(Split split);

// <data_dir>/cluttered-mnist-<canvas>-<distractors>
std::string ClutteredDir(const std::string& data_dir, const ClutterOptions& options);

// The command that (re)creates the files of `options`.
std::string ClutteredHowToCreate(const ClutterOptions& options);

// Generates the three splits from <data_dir>/mnist and writes them.
absl::Status WriteCluttered(const std::string& data_dir, const ClutterOptions& options);

// Reads a split; with `generate`, first writes all splits when any file of
// them is missing (a corrupt file is an error either way, naming the file and
// the command that recreates it). kTrainFull is not a cluttered split.
absl::StatusOr<ClutteredSet> LoadCluttered(const std::string& data_dir,
                                           const ClutterOptions& options, Split split,
                                           bool generate);

}  // namespace data
}  // namespace indexgrad
