// Checks of experiment flags shared by the presets of every experiment, so
// that errors read the same everywhere: "--<flag> must be <what>, got <got>".
//
//   if (p.lr <= 0) return FlagError("lr", "> 0", p.lr);
//   absl::Status st = ParseChoices("methods", "ram,convnet", {"ram", "convnet"}, &p.methods);
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace indexgrad {
namespace experiments {

template <typename T>
absl::Status FlagError(absl::string_view flag, absl::string_view what, const T& got) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, " must be ", what, ", got ", got));
}

// Splits the comma-separated `value`; every item must be one of `allowed`,
// else "--<flag> must be a, b and/or c, got '<item>'". Replaces *out.
absl::Status ParseChoices(absl::string_view flag, const std::string& value,
                          const std::vector<std::string>& allowed,
                          std::vector<std::string>* out);

}  // namespace experiments
}  // namespace indexgrad
