// Reading IDX files (the MNIST / Fashion-MNIST format) into tensors.
//
//   absl::StatusOr<indexgrad::data::ImageSet> train =
//       indexgrad::data::LoadImageSet(indexgrad::data::DefaultDataDir(),
//                                     "mnist", indexgrad::data::Split::kTrain);
//
// Files are produced once by `tools/install_deps.sh` (which runs
// tools/prepare_data.py) under the data directory:
//   <data_dir>/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte
//   <data_dir>/fashion-mnist/... (same names)
// A missing, truncated or malformed file gives a status naming the file and
// the command that creates it.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace indexgrad {
namespace data {

// How the MNIST files are made; the default `how_to_create` of ReadIdx.
extern const char kMnistHowToCreate[];

// Reads an unsigned-byte IDX file (type 0x08, any rank) as a kByte tensor
// whose shape is the file's dimensions. Errors name the file and end with
// `how_to_create` (the command that makes the file).
absl::StatusOr<at::Tensor> ReadIdx(const std::string& path,
                                   absl::string_view how_to_create = kMnistHowToCreate);

// Writes a kByte tensor (rank 1..255) as an unsigned-byte IDX file; an error
// names the file.
absl::Status WriteIdx(const std::string& path, const at::Tensor& bytes);

// The official MNIST split is 60,000 training / 10,000 test items. The
// validation split is carved from the training file, fixed: its last
// kValidationSize items (55,000..59,999 for MNIST and Fashion-MNIST);
// kTrain is everything before them, kTrainFull the whole training file.
enum class Split { kTrain, kValidation, kTrainFull, kTest };
constexpr int64_t kValidationSize = 5000;

struct ImageSet {
  at::Tensor images;  // [N, 28, 28] float32 in [0, 1]
  at::Tensor labels;  // [N] int64 in [0, 10)
};

// `name` is "mnist" or "fashion-mnist".
absl::StatusOr<ImageSet> LoadImageSet(const std::string& data_dir,
                                      absl::string_view name, Split split);

// $INDEXGRAD_DATA_DIR if set, else <workspace>/data under `bazel run`
// ($BUILD_WORKSPACE_DIRECTORY), else ./data.
std::string DefaultDataDir();

}  // namespace data
}  // namespace indexgrad
