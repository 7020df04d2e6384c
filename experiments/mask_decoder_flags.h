// The --decoder_* flags of //experiments:train_mask_decoder and
// //experiments:mask_recovery (compiled into both binaries, as Abseil
// advises: flags in binaries, not in libraries):
//   --decoder_path   decoder file (default
//                    <workspace>/out/mask_decoder/decoder_<H>x<W>.pt)
//   --decoder_steps, --decoder_batch, --decoder_lr, --decoder_hidden,
//   --decoder_blocks
#pragma once

#include <cstdint>

#include "experiments/mask_decoder_training.h"

namespace indexgrad {
namespace experiments {

// The flags' settings for an H x W decoder.
MaskDecoderTraining MaskDecoderTrainingFromFlags(int64_t height, int64_t width);

}  // namespace experiments
}  // namespace indexgrad
