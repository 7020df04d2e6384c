#include "experiments/common/main.h"

#include <c10/util/Exception.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <unistd.h>
#endif

namespace indexgrad {
namespace experiments {

void ShortOpenMpSpins(char** argv) {
#if defined(__linux__)
  if (std::getenv("GOMP_SPINCOUNT") != nullptr || std::getenv("OMP_WAIT_POLICY") != nullptr) {
    return;
  }
  setenv("GOMP_SPINCOUNT", "3000", 1);
  execv("/proc/self/exe", argv);
  // Only reached when exec failed: carry on with libgomp's defaults.
#else
  (void)argv;
#endif
}

void KeepFreedMemory() {
#if defined(__GLIBC__)
  if (std::getenv("MALLOC_MMAP_MAX_") == nullptr) mallopt(M_MMAP_MAX, 0);
  if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr) mallopt(M_TRIM_THRESHOLD, INT_MAX);
#endif
}

int RunMain(const char* program, absl::Status (*body)(int, char**), int argc, char** argv) {
  ShortOpenMpSpins(argv);
  KeepFreedMemory();
  std::string error;
  try {
    const absl::Status status = body(argc, argv);
    if (status.ok()) return 0;
    error = std::string(status.message());
  } catch (const c10::Error& e) {
    error = e.what_without_backtrace();
  }
  std::fflush(stdout);
  std::fprintf(stderr, "%s: %s\n", program, error.c_str());
  return 1;
}

}  // namespace experiments
}  // namespace indexgrad
