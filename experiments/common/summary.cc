#include "experiments/common/summary.h"

#include <cstdio>
#include <fstream>

#include <c10/util/Exception.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace indexgrad {
namespace experiments {

std::string MarkdownTable(const std::vector<std::string>& header,
                          const std::vector<std::vector<std::string>>& rows) {
  TORCH_CHECK(!header.empty(), "MarkdownTable: empty header");
  std::string md = absl::StrCat("| ", absl::StrJoin(header, " | "), " |\n|");
  for (size_t i = 0; i < header.size(); ++i) md += "---|";
  md += "\n";
  for (size_t r = 0; r < rows.size(); ++r) {
    TORCH_CHECK(rows[r].size() == header.size(), "MarkdownTable: row ", r, " has ",
                rows[r].size(), " cells, the header ", header.size());
    absl::StrAppend(&md, "| ", absl::StrJoin(rows[r], " | "), " |\n");
  }
  return md;
}

absl::Status WriteSummaryMarkdown(const std::string& out_dir, const std::string& markdown) {
  std::printf("\n%s\n", markdown.c_str());
  std::fflush(stdout);
  const std::string path = out_dir + "/summary.md";
  std::ofstream out(path);
  out << markdown;
  out.flush();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace experiments
}  // namespace indexgrad
