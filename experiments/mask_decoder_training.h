// Training of the MLP mask operator's decoder (diff_masks/mask_decoder.h),
// shared by //experiments:train_mask_decoder and //experiments:mask_recovery
// (which trains it first when the decoder file is missing). Flags:
//   --decoder_path   decoder file (default
//                    <workspace>/out/mask_decoder/decoder_<H>x<W>.pt)
//   --decoder_steps, --decoder_batch, --decoder_lr, --decoder_hidden,
//   --decoder_blocks
// Writes beside the decoder file: decoder_<H>x<W>.csv (per step loss and
// learning rate; IoU and pixel accuracy at evaluations) and a checkpoint
// to resume an interrupted training from.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "diff_masks/mask_decoder.h"

namespace indexgrad {
namespace experiments {

// The decoder file for an H x W decoder under the flags.
std::string MaskDecoderPath(int64_t height, int64_t width);

// Trains a decoder with the flags' settings (resuming from its checkpoint
// if `resume`) and saves it to MaskDecoderPath().
absl::StatusOr<diff_masks::MaskDecoder> TrainMaskDecoder(int64_t height, int64_t width,
                                                         bool resume = true);

// Loads MaskDecoderPath(); trains one first when the file is missing.
absl::StatusOr<diff_masks::MaskDecoder> LoadOrTrainMaskDecoder(int64_t height,
                                                               int64_t width);

}  // namespace experiments
}  // namespace indexgrad
