// The --threads flag shared by every experiment main: ApplyThreadsFlag()
// sets LibTorch's intra-op thread count (default 0 = all hardware
// threads; Debian's LibTorch starts with 1 on this machine kind) and
// returns it; a negative value is an error naming the flag.
#pragma once

#include "absl/status/statusor.h"

namespace indexgrad {
namespace experiments {

absl::StatusOr<int> ApplyThreadsFlag();

}  // namespace experiments
}  // namespace indexgrad
