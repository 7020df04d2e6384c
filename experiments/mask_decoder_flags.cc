#include "experiments/mask_decoder_flags.h"

#include <string>

#include "absl/flags/flag.h"
#include "experiments/common/csv.h"

// Defaults: MaskDecoderTraining's (one place for them).
using indexgrad::experiments::MaskDecoderTraining;
ABSL_FLAG(std::string, decoder_path, "",
          "MLP mask operator: decoder file (default "
          "<workspace>/out/mask_decoder/decoder_<H>x<W>.pt)");
ABSL_FLAG(int64_t, decoder_steps, MaskDecoderTraining().steps,
          "MLP mask operator: decoder training steps");
ABSL_FLAG(int64_t, decoder_batch, MaskDecoderTraining().batch,
          "MLP mask operator: random points per decoder training step");
ABSL_FLAG(double, decoder_lr, MaskDecoderTraining().lr,
          "MLP mask operator: peak Adam learning rate of the decoder (cosine decay)");
ABSL_FLAG(int64_t, decoder_hidden, MaskDecoderTraining().hidden,
          "MLP mask operator: decoder width");
ABSL_FLAG(int64_t, decoder_blocks, MaskDecoderTraining().blocks,
          "MLP mask operator: decoder blocks after the first");

namespace indexgrad {
namespace experiments {

MaskDecoderTraining MaskDecoderTrainingFromFlags(int64_t height, int64_t width) {
  MaskDecoderTraining t;
  const std::string path = absl::GetFlag(FLAGS_decoder_path);
  t.path = path.empty() ? DefaultMaskDecoderPath(height, width) : UserPath(path);
  t.steps = absl::GetFlag(FLAGS_decoder_steps);
  t.batch = absl::GetFlag(FLAGS_decoder_batch);
  t.lr = absl::GetFlag(FLAGS_decoder_lr);
  t.hidden = absl::GetFlag(FLAGS_decoder_hidden);
  t.blocks = absl::GetFlag(FLAGS_decoder_blocks);
  return t;
}

}  // namespace experiments
}  // namespace indexgrad
