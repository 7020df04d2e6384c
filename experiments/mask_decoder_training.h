// Training of the MLP mask operator's decoder (diff_masks/mask_decoder.h),
// shared by //experiments:train_mask_decoder and //experiments:mask_recovery
// (which trains it first when the decoder file is missing). Both binaries
// fill MaskDecoderTraining from the --decoder_* flags
// (experiments/mask_decoder_flags.h); this library reads no flags.
// Writes beside the decoder file <stem>.pt: <stem>.csv (per step loss and
// learning rate; IoU and pixel accuracy at evaluations) and <stem>.ckpt, a
// checkpoint to resume an interrupted training from.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "diff_masks/mask_decoder.h"

namespace indexgrad {
namespace experiments {

struct MaskDecoderTraining {
  std::string path;     // the decoder file (required)
  int64_t steps = 4000;  // training steps, >= 1
  int64_t batch = 256;   // random points per step, >= 2
  double lr = 3e-3;      // peak Adam learning rate (short warm-up, cosine decay)
  // The decoder's shape, MaskDecoderOptions' defaults unless set.
  int64_t hidden = diff_masks::MaskDecoderOptions(2, 2).hidden();  // width of every block
  int64_t blocks = diff_masks::MaskDecoderOptions(2, 2).blocks();  // blocks after the first
};

// <workspace>/out/mask_decoder/decoder_<H>x<W>.pt
std::string DefaultMaskDecoderPath(int64_t height, int64_t width);

// Trains an H x W decoder (seeded: the same settings give the same weights,
// whatever the process drew before), resuming from <stem>.ckpt if `resume`,
// and saves it to training.path. Errors name the flag and the value seen.
absl::StatusOr<diff_masks::MaskDecoder> TrainMaskDecoder(int64_t height, int64_t width,
                                                         const MaskDecoderTraining& training,
                                                         bool resume = true);

// Loads training.path; trains one first when the file is missing.
absl::StatusOr<diff_masks::MaskDecoder> LoadOrTrainMaskDecoder(
    int64_t height, int64_t width, const MaskDecoderTraining& training);

}  // namespace experiments
}  // namespace indexgrad
