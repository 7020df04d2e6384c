#include "experiments/common/flags.h"

#include <algorithm>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace indexgrad {
namespace experiments {

absl::Status ParseChoices(absl::string_view flag, const std::string& value,
                          const std::vector<std::string>& allowed,
                          std::vector<std::string>* out) {
  std::string what = absl::StrJoin(allowed.begin(), allowed.end() - 1, ", ");
  if (allowed.size() > 1) absl::StrAppend(&what, " and/or ");
  absl::StrAppend(&what, allowed.back());
  std::vector<std::string> items;
  for (absl::string_view item : absl::StrSplit(value, ',')) {
    if (std::find(allowed.begin(), allowed.end(), item) == allowed.end()) {
      return FlagError(flag, what, absl::StrCat("'", item, "'"));
    }
    items.emplace_back(item);
  }
  *out = std::move(items);
  return absl::OkStatus();
}

}  // namespace experiments
}  // namespace indexgrad
