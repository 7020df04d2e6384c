#include "experiments/common/device.h"

#include <torch/cuda.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(std::string, device, "cpu",
          "where the model runs: cpu, cuda or cuda:N (CUDA needs the CMake build against a "
          "CUDA LibTorch)");

namespace indexgrad {
namespace experiments {

absl::StatusOr<torch::Device> ParseDevice(const std::string& name, int64_t cuda_devices) {
  const auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("--device must be cpu, cuda or cuda:N, got '", name, "'"));
  };
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name.rfind("cuda", 0) != 0) return bad();
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(name);
  } catch (const c10::Error&) {
    return bad();
  }
  const int64_t index = device.has_index() ? device.index() : 0;
  if (index >= cuda_devices) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--device=", name, ": ", cuda_devices,
        " CUDA devices are visible to this LibTorch (Debian's is CPU only: build with "
        "CMake against a CUDA LibTorch, see docs/development.md)"));
  }
  return device;
}

absl::StatusOr<torch::Device> DeviceFromFlag() {
  return ParseDevice(absl::GetFlag(FLAGS_device),
                     static_cast<int64_t>(torch::cuda::device_count()));
}

}  // namespace experiments
}  // namespace indexgrad
