#include "experiments/common/main.h"

#include <c10/util/Exception.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

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

int RunMain(const char* program, int (*body)(int, char**), int argc, char** argv) {
  ShortOpenMpSpins(argv);
  KeepFreedMemory();
  try {
    return body(argc, argv);
  } catch (const c10::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s: %s\n", program, e.what_without_backtrace());
    return 1;
  }
}

}  // namespace experiments
}  // namespace indexgrad
