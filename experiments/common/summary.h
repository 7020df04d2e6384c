// The summary.md every experiment writes: a Markdown table of its runs.
//
//   const std::string md = MarkdownTable({"method", "error"}, {{"a", "1 %"}});
//   if (auto st = WriteSummaryMarkdown(out_dir, md); !st.ok()) ...
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace indexgrad {
namespace experiments {

// "| h1 | h2 |\n|---|---|\n| a | b |\n...". Every row must have as many
// cells as the header (a c10::Error names the row and both counts: the
// callers build their rows, so a mismatch is a bug, not bad input).
std::string MarkdownTable(const std::vector<std::string>& header,
                          const std::vector<std::vector<std::string>>& rows);

// Prints `markdown` after a blank line and writes it to OUT_DIR/summary.md;
// an unwritable file is an error naming it.
absl::Status WriteSummaryMarkdown(const std::string& out_dir, const std::string& markdown);

}  // namespace experiments
}  // namespace indexgrad
