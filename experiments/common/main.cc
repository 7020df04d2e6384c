#include "experiments/common/main.h"

#include <c10/util/Exception.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace indexgrad {
namespace experiments {

void KeepFreedMemory() {
#if defined(__GLIBC__)
  if (std::getenv("MALLOC_MMAP_MAX_") == nullptr) mallopt(M_MMAP_MAX, 0);
  if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr) mallopt(M_TRIM_THRESHOLD, INT_MAX);
#endif
}

int RunMain(const char* program, int (*body)(int, char**), int argc, char** argv) {
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
