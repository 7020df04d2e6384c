#include "experiments/common/csv.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace indexgrad {
namespace experiments {

absl::StatusOr<CsvWriter> CsvWriter::Open(const std::string& path,
                                          std::vector<std::string> columns,
                                          bool append) {
  const std::string header = absl::StrJoin(columns, ",");
  bool write_header = true;
  if (append) {
    std::ifstream existing(path);
    std::string first;
    if (existing && std::getline(existing, first)) {
      if (first != header) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot append to '", path, "': its header '", first,
                         "' differs from '", header,
                         "' (written by another version or configuration; "
                         "start over with --resume=false or use another "
                         "--out_dir)"));
      }
      write_header = false;
    }
  }
  auto out = std::make_unique<std::ofstream>(
      path, append ? std::ios::app : std::ios::trunc);
  if (!*out) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write CSV '", path, "': ", std::strerror(errno)));
  }
  if (write_header) *out << header << "\n" << std::flush;
  return CsvWriter(path, columns.size(), std::move(out));
}

void CsvWriter::Row(const std::vector<double>& values) {
  std::vector<std::string> text;
  for (double v : values) text.push_back(absl::StrCat(v));
  TextRow(text);
}

void CsvWriter::TextRow(const std::vector<std::string>& values) {
  *out_ << absl::StrJoin(values, ",") << "\n" << std::flush;
}

namespace {

// Opens a CSV and reads its header; `in` is left at the first data row.
// Errors name the file.
absl::StatusOr<std::vector<std::string>> OpenCsv(const std::string& path, std::ifstream& in) {
  in.open(path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return absl::NotFoundError(absl::StrCat("cannot read CSV '", path, "'"));
  }
  return std::vector<std::string>(absl::StrSplit(line, ','));
}

// The position of `column` in `header`; an error names the file, the
// column and the header.
absl::StatusOr<size_t> ColumnIndex(const std::string& path,
                                   const std::vector<std::string>& header,
                                   const std::string& column) {
  const auto it = std::find(header.begin(), header.end(), column);
  if (it == header.end()) {
    return absl::InvalidArgumentError(absl::StrCat("CSV '", path, "' has no column '", column,
                                                   "' (header: ", absl::StrJoin(header, ","),
                                                   ")"));
  }
  return static_cast<size_t>(it - header.begin());
}

}  // namespace

absl::StatusOr<int64_t> FirstStepAtLeast(const std::string& path, const std::string& column,
                                         double threshold) {
  std::ifstream in;
  auto header = OpenCsv(path, in);
  if (!header.ok()) return header.status();
  auto index = ColumnIndex(path, *header, column);
  if (!index.ok()) return index.status();
  std::string line;
  while (std::getline(in, line)) {
    const std::vector<std::string> cells = absl::StrSplit(line, ',');
    double value = 0;
    int64_t step = 0;
    if (cells.size() > *index && absl::SimpleAtod(cells[*index], &value) &&
        value >= threshold && absl::SimpleAtoi(cells[0], &step)) {
      return step;
    }
  }
  return -1;
}

absl::StatusOr<std::vector<double>> LastRowValues(const std::string& path,
                                                  const std::vector<std::string>& columns) {
  std::ifstream in;
  auto header = OpenCsv(path, in);
  if (!header.ok()) return header.status();
  std::vector<size_t> indices;
  for (const std::string& column : columns) {
    auto index = ColumnIndex(path, *header, column);
    if (!index.ok()) return index.status();
    indices.push_back(*index);
  }
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  if (last.empty()) return std::vector<double>{};
  const std::vector<std::string> cells = absl::StrSplit(last, ',');
  std::vector<double> values;
  for (size_t i : indices) {
    double value = 0;
    values.push_back(i < cells.size() && absl::SimpleAtod(cells[i], &value) ? value : NAN);
  }
  return values;
}

absl::Status DropRowsAfterStep(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return absl::OkStatus();
  std::string line, kept;
  bool header = true;
  int64_t dropped = 0;
  while (std::getline(in, line)) {
    int64_t row_step = 0;
    if (!header && absl::SimpleAtoi(line.substr(0, line.find(',')), &row_step) &&
        row_step > step) {
      ++dropped;
      continue;
    }
    header = false;
    kept += line + "\n";
  }
  in.close();
  if (dropped == 0) return absl::OkStatus();
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << kept;
    if (!out) return absl::DataLossError(absl::StrCat("cannot write '", tmp, "'"));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::DataLossError(
        absl::StrCat("cannot replace '", path, "': ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status MakeDirs(const std::string& dir) {
  std::string partial;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      partial = dir.substr(0, i);
      if (!partial.empty() && mkdir(partial.c_str(), 0755) != 0 &&
          errno != EEXIST) {
        return absl::PermissionDeniedError(absl::StrCat(
            "cannot create directory '", partial, "': ", std::strerror(errno)));
      }
    }
  }
  return absl::OkStatus();
}

namespace {

// The workspace under `bazel run`, else the current folder.
std::string WorkspaceRoot() {
  const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  return ws ? ws : ".";
}

}  // namespace

std::string UserPath(const std::string& path) {
  const char* cwd = std::getenv("BUILD_WORKING_DIRECTORY");
  if (path.empty() || path[0] == '/' || cwd == nullptr) return path;
  return absl::StrCat(cwd, "/", path);
}

std::string OutputDir(const std::string& flag_value, const std::string& name) {
  if (!flag_value.empty()) return UserPath(flag_value);
  return absl::StrCat(WorkspaceRoot(), "/out/", name);
}

absl::Status RunPlot(const std::string& figure, const std::string& out_dir) {
  const std::string cmd = absl::StrCat("/usr/bin/python3 '", WorkspaceRoot(),
                                       "/tools/plot.py' ", figure, " '",
                                       out_dir, "'");
  if (std::system(cmd.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("plotting failed; run: ", cmd));
  }
  return absl::OkStatus();
}

}  // namespace experiments
}  // namespace indexgrad
