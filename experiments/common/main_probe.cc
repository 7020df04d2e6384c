// Prints what RunMain leaves in the environment and the arguments it
// passes on; with the first argument --fail, returns an error status
// instead (common_test runs it).
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/status/status.h"
#include "experiments/common/main.h"

namespace {

absl::Status Body(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--fail") == 0) {
    return absl::InvalidArgumentError("--fail was given");
  }
  const char* spins = std::getenv("GOMP_SPINCOUNT");
  std::printf("GOMP_SPINCOUNT=%s", spins == nullptr ? "(unset)" : spins);
  for (int i = 1; i < argc; ++i) std::printf(" %s", argv[i]);
  std::printf("\n");
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  return indexgrad::experiments::RunMain("main_probe", Body, argc, argv);
}
