#include "experiments/common/threads.h"

#include <ATen/Parallel.h>

#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(int32_t, threads, 0,
          "intra-op CPU threads (0 = all hardware threads)");

namespace indexgrad {
namespace experiments {

absl::StatusOr<int> ApplyThreadsFlag() {
  int threads = absl::GetFlag(FLAGS_threads);
  if (threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--threads must be >= 0 (0: all hardware threads), got ", threads));
  }
  if (threads == 0) {
    threads = static_cast<int>(std::thread::hardware_concurrency());
  }
  if (threads < 1) threads = 1;
  at::set_num_threads(threads);
  return threads;
}

}  // namespace experiments
}  // namespace indexgrad
