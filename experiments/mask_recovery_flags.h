// The mask recovery experiment's flags and their translation into its setup
// (the mask_recovery binary's own; experiments/mask_recovery.cc is its
// main). Errors name the flag and the value seen.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "experiments/mask_recovery_run.h"

namespace indexgrad {
namespace experiments {

// Parses and checks every flag; loads the digit target's data and the MLP
// operator's decoder (training it when missing); creates the output folders.
absl::StatusOr<MaskRecoverySetup> MaskRecoverySetupFromFlags();

int64_t SeedsFromFlags();  // runs per (operator, target)
bool PlotFromFlags();      // draw masks.png

}  // namespace experiments
}  // namespace indexgrad
