#include "experiments/mask_decoder_training.h"

#include <torch/optim/adam.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/common/csv.h"
#include "experiments/common/train_loop.h"

namespace indexgrad {
namespace experiments {

namespace dm = indexgrad::diff_masks;

namespace {

dm::MaskDecoderOptions DecoderOptions(int64_t height, int64_t width,
                                      const MaskDecoderTraining& training) {
  return dm::MaskDecoderOptions(height, width)
      .hidden(training.hidden)
      .blocks(training.blocks);
}

}  // namespace

std::string DefaultMaskDecoderPath(int64_t height, int64_t width) {
  return absl::StrFormat("%s/decoder_%dx%d.pt", OutputDir("", "mask_decoder"), height,
                         width);
}

absl::StatusOr<dm::MaskDecoder> TrainMaskDecoder(int64_t height, int64_t width,
                                                 const MaskDecoderTraining& training,
                                                 bool resume) {
  const int64_t steps = training.steps;
  const int64_t batch = training.batch;
  const double peak_lr = training.lr;
  if (training.path.empty()) return absl::InvalidArgumentError("--decoder_path must not be empty");
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
    decoder = dm::MaskDecoder(DecoderOptions(height, width, training));
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(e.what_without_backtrace());
  }
  const std::string& path = training.path;
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

absl::StatusOr<dm::MaskDecoder> LoadOrTrainMaskDecoder(int64_t height, int64_t width,
                                                       const MaskDecoderTraining& training) {
  if (!std::ifstream(training.path).good()) {
    std::printf("no mask decoder at %s: training one first\n", training.path.c_str());
    std::fflush(stdout);
    return TrainMaskDecoder(height, width, training);
  }
  return dm::LoadMaskDecoder(training.path, DecoderOptions(height, width, training));
}

}  // namespace experiments
}  // namespace indexgrad
