// The --threads flag shared by every experiment main: ApplyThreadsFlag()
// sets LibTorch's intra-op thread count (default 1, 0 = all hardware
// threads) and returns it.
#pragma once

namespace indexgrad {
namespace experiments {

int ApplyThreadsFlag();

}  // namespace experiments
}  // namespace indexgrad
