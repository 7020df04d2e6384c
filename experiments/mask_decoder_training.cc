#include "experiments/mask_decoder_training.h"

#include <torch/optim/adam.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/common/csv.h"
#include "experiments/common/train_loop.h"

ABSL_FLAG(std::string, decoder_path, "",
          "MLP mask operator: decoder file (default "
          "<workspace>/out/mask_decoder/decoder_<H>x<W>.pt)");
ABSL_FLAG(int64_t, decoder_steps, 4000, "MLP mask operator: decoder training steps");
ABSL_FLAG(int64_t, decoder_batch, 256,
          "MLP mask operator: random points per decoder training step");
ABSL_FLAG(double, decoder_lr, 3e-3,
          "MLP mask operator: peak Adam learning rate of the decoder (cosine decay)");
ABSL_FLAG(int64_t, decoder_hidden, 256, "MLP mask operator: decoder width");
ABSL_FLAG(int64_t, decoder_blocks, 3,
          "MLP mask operator: decoder blocks after the first");

namespace indexgrad {
namespace experiments {

namespace dm = indexgrad::diff_masks;

namespace {

dm::MaskDecoderOptions FlagOptions(int64_t height, int64_t width) {
  return dm::MaskDecoderOptions(height, width)
      .hidden(absl::GetFlag(FLAGS_decoder_hidden))
      .blocks(absl::GetFlag(FLAGS_decoder_blocks));
}

}  // namespace

std::string MaskDecoderPath(int64_t height, int64_t width) {
  const std::string flag = absl::GetFlag(FLAGS_decoder_path);
  if (!flag.empty()) return UserPath(flag);
  return absl::StrFormat("%s/decoder_%dx%d.pt", OutputDir("", "mask_decoder"), height,
                         width);
}

absl::StatusOr<dm::MaskDecoder> TrainMaskDecoder(int64_t height, int64_t width,
                                                 bool resume) {
  const int64_t steps = absl::GetFlag(FLAGS_decoder_steps);
  const int64_t batch = absl::GetFlag(FLAGS_decoder_batch);
  const double peak_lr = absl::GetFlag(FLAGS_decoder_lr);
  if (steps < 1) return absl::InvalidArgumentError(absl::StrCat("--decoder_steps must be >= 1, got ", steps));
  if (batch < 2) return absl::InvalidArgumentError(absl::StrCat("--decoder_batch must be >= 2, got ", batch));
  if (!(peak_lr > 0)) return absl::InvalidArgumentError(absl::StrCat("--decoder_lr must be > 0, got ", peak_lr));
  if (height < 2 || width < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("decoder size must be at least 2 x 2, got ", height, " x ", width));
  }
  // Seeded before the weights are drawn: the decoder depends on the flags
  // only, not on what the process drew before (mask_recovery trains it after
  // the runs of other operators, some of them resumed).
  at::manual_seed(0);
  dm::MaskDecoder decoder{nullptr};
  try {
    decoder = dm::MaskDecoder(FlagOptions(height, width));
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(e.what_without_backtrace());
  }
  const std::string path = MaskDecoderPath(height, width);
  const std::string stem = path.substr(0, path.rfind(".pt") == std::string::npos
                                              ? path.size()
                                              : path.rfind(".pt"));
  const std::string dir = std::filesystem::path(path).parent_path().string();
  if (!dir.empty()) {
    if (auto st = MakeDirs(dir); !st.ok()) return st;
  }
  torch::optim::Adam adam(decoder->parameters(), torch::optim::AdamOptions(peak_lr));
  TrainLoopOptions loop;
  loop.label = absl::StrFormat("mask decoder %dx%d", height, width);
  loop.steps = steps;
  loop.eval_every = std::max<int64_t>(1, steps / 8);
  loop.checkpoint_every = 500;
  loop.checkpoint_path = stem + ".ckpt";
  loop.resume = resume;
  loop.csv_path = stem + ".csv";
  loop.train_columns = {"loss", "lr"};
  loop.eval_columns = {"iou", "pixel_accuracy"};
  // Evaluation masks: a quarter of the pixels' worth of random points.
  const int64_t eval_k = std::max<int64_t>(1, height * width / 4);
  auto result = RunTrainLoop(
      loop, *decoder, adam,
      [&](int64_t step) {
        // Short linear warm-up, then cosine decay to 2% of the peak.
        const double t = static_cast<double>(step) / steps;
        const double lr = peak_lr * std::min(1.0, 20.0 * t + 0.05) *
                          (0.02 + 0.98 * 0.5 * (1 + std::cos(M_PI * t)));
        SetLearningRate(adam, lr);
        return std::vector<double>{dm::TrainMaskDecoderStep(*decoder, adam, batch), lr};
      },
      [&](int64_t, bool* stop) {
        *stop = false;
        const dm::MaskDecoderScores s =
            dm::EvaluateMaskDecoder(*decoder, eval_k, 32, /*seed=*/12345);
        return std::vector<double>{s.iou, s.pixel_accuracy};
      });
  if (!result.ok()) return result.status();
  decoder->eval();
  if (auto st = dm::SaveMaskDecoder(*decoder, path); !st.ok()) return st;
  std::printf("mask decoder %lldx%lld: IoU %.4f (K = %lld), pixel accuracy %.4f, saved to %s\n",
              static_cast<long long>(height), static_cast<long long>(width),
              result->last_eval.empty() ? NAN : result->last_eval[0],
              static_cast<long long>(eval_k),
              result->last_eval.size() < 2 ? NAN : result->last_eval[1], path.c_str());
  std::fflush(stdout);
  return decoder;
}

absl::StatusOr<dm::MaskDecoder> LoadOrTrainMaskDecoder(int64_t height, int64_t width) {
  const std::string path = MaskDecoderPath(height, width);
  if (!std::ifstream(path).good()) {
    std::printf("no mask decoder at %s: training one first\n", path.c_str());
    std::fflush(stdout);
    return TrainMaskDecoder(height, width);
  }
  return dm::LoadMaskDecoder(path, FlagOptions(height, width));
}

}  // namespace experiments
}  // namespace indexgrad
