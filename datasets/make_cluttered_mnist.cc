// Writes cluttered MNIST (datasets/cluttered_mnist.h) into the data folder:
//
//   bazel run //datasets:make_cluttered_mnist                       # 100 x 100, 8 distractors
//   bazel run //datasets:make_cluttered_mnist -- --canvas=60 --distractors=4
//
// Needs the MNIST files of tools/install_deps.sh. About 3 s and 750 MB for
// the default setting.
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "datasets/cluttered_mnist.h"

ABSL_FLAG(int64_t, canvas, 100, "canvas side in pixels, 28..255");
ABSL_FLAG(int64_t, distractors, 8, "8 x 8 distractor crops per image");
ABSL_FLAG(int64_t, seed, 0, "random seed (the experiments use 0)");
ABSL_FLAG(std::string, data_dir, "", "data folder (default: see datasets/idx.h)");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Generates cluttered MNIST from the MNIST IDX files.");
  absl::ParseCommandLine(argc, argv);
  indexgrad::data::ClutterOptions o;
  o.canvas = absl::GetFlag(FLAGS_canvas);
  o.distractors = absl::GetFlag(FLAGS_distractors);
  o.seed = absl::GetFlag(FLAGS_seed);
  std::string dir = absl::GetFlag(FLAGS_data_dir);
  if (dir.empty()) dir = indexgrad::data::DefaultDataDir();
  if (absl::Status st = indexgrad::data::WriteCluttered(dir, o); !st.ok()) {
    std::fprintf(stderr, "make_cluttered_mnist: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  std::printf("make_cluttered_mnist: wrote %s\n", indexgrad::data::ClutteredDir(dir, o).c_str());
  return 0;
}
