// Prints what RunMain leaves in the environment and the arguments it
// passes on (common_test runs it).
#include <cstdio>
#include <cstdlib>

#include "experiments/common/main.h"

namespace {

int Body(int argc, char** argv) {
  const char* spins = std::getenv("GOMP_SPINCOUNT");
  std::printf("GOMP_SPINCOUNT=%s", spins == nullptr ? "(unset)" : spins);
  for (int i = 1; i < argc; ++i) std::printf(" %s", argv[i]);
  std::printf("\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return indexgrad::experiments::RunMain("main_probe", Body, argc, argv);
}
