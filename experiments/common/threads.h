// The --threads flag shared by every experiment main: ApplyThreadsFlag()
// sets LibTorch's intra-op thread count (default 0 = all hardware
// threads; Debian's LibTorch starts with 1 on this machine kind) and
// returns it.
#pragma once

namespace indexgrad {
namespace experiments {

int ApplyThreadsFlag();

}  // namespace experiments
}  // namespace indexgrad
