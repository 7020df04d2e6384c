#include "experiments/common/main.h"

#include <c10/util/Exception.h>

#include <cstdio>

namespace indexgrad {
namespace experiments {

int RunMain(const char* program, int (*body)(int, char**), int argc, char** argv) {
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
