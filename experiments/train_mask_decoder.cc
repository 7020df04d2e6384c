// Trains the decoder of the MLP mask operator (Shekhar et al. 2023, method
// 3) on random points and saves it for //experiments:mask_recovery.
//
//   bazel run //experiments:train_mask_decoder                # 32 x 32
//   bazel run //experiments:train_mask_decoder -- --size=64 --decoder_steps=8000
#include <cstdio>
#include <filesystem>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "experiments/common/csv.h"
#include "experiments/common/main.h"
#include "experiments/common/threads.h"
#include "experiments/mask_decoder_flags.h"
#include "experiments/mask_decoder_training.h"

ABSL_FLAG(int64_t, size, 32, "mask height and width");
ABSL_FLAG(bool, resume, true, "resume from the training checkpoint");
ABSL_FLAG(bool, plot, true, "draw decoder_<H>x<W>.png with tools/plot.py");

namespace {

absl::Status Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Trains the MLP mask operator's decoder (random points -> their masks) "
      "and saves it.");
  absl::ParseCommandLine(argc, argv);
  if (absl::StatusOr<int> threads = indexgrad::experiments::ApplyThreadsFlag(); !threads.ok()) {
    return threads.status();
  }
  const int64_t size = absl::GetFlag(FLAGS_size);
  const indexgrad::experiments::MaskDecoderTraining training =
      indexgrad::experiments::MaskDecoderTrainingFromFlags(size, size);
  auto decoder =
      indexgrad::experiments::TrainMaskDecoder(size, size, training, absl::GetFlag(FLAGS_resume));
  if (!decoder.ok()) return decoder.status();
  if (absl::GetFlag(FLAGS_plot)) {
    std::string dir = std::filesystem::path(training.path).parent_path().string();
    if (dir.empty()) dir = ".";
    if (auto st = indexgrad::experiments::RunPlot("decoder", dir); !st.ok()) {
      std::fprintf(stderr, "train_mask_decoder: %s\n", std::string(st.message()).c_str());
    }
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  return indexgrad::experiments::RunMain("train_mask_decoder", Main, argc, argv);
}
