// The identity experiment's flags and their translation into the runs'
// configurations (the identity binary's own; experiments/identity.cc is its
// main). Errors name the flag and the value seen.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/identity_run.h"

namespace indexgrad {
namespace experiments {

// The sweep the flags ask for.
struct IdentityPlan {
  std::string preset;  // default or paper
  bool paper = false;
  std::vector<std::string> methods;
  std::vector<int64_t> sizes;
  int64_t repeats = 2;
  torch::Device device = torch::kCPU;
  std::string out_dir;
  bool plot = true;
};

// Parses and checks every flag, including each run's configuration (so a
// bad value stops the program before the first run starts).
absl::StatusOr<IdentityPlan> IdentityPlanFromFlags();

// One run's configuration: the preset, then the flags that override it.
IdentityConfig IdentityConfigFromFlags(const IdentityPlan& plan, const std::string& method,
                                       int64_t n, int64_t repeat, const std::string& run_dir);

}  // namespace experiments
}  // namespace indexgrad
