// The --device flag shared by experiment mains: "cpu" (default), "cuda" or
// "cuda:N". Debian's LibTorch is CPU only; the CUDA kernels run in the
// CMake build against a CUDA LibTorch (docs/development.md).
#pragma once

#include <torch/types.h>

#include <string>

#include "absl/status/statusor.h"

namespace indexgrad {
namespace experiments {

// The device named by --device, checked.
absl::StatusOr<torch::Device> DeviceFromFlag();

// `name` as a device: cpu, cuda or cuda:N; a CUDA device only when
// `cuda_devices` (how many are visible) covers it. Errors name the flag.
absl::StatusOr<torch::Device> ParseDevice(const std::string& name, int64_t cuda_devices);

}  // namespace experiments
}  // namespace indexgrad
