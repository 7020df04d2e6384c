// CSV of logged metrics, one row per call, header written once:
//
//   absl::StatusOr<CsvWriter> csv = CsvWriter::Open(path, {"step", "loss"});
//   csv->Row({step, loss});
//
// Appends when the file exists with the same header (resuming from a
// checkpoint), so a resumed run keeps one continuous CSV.
#pragma once

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace indexgrad {
namespace experiments {

class CsvWriter {
 public:
  static absl::StatusOr<CsvWriter> Open(const std::string& path,
                                        std::vector<std::string> columns,
                                        bool append = false);
  // One value per column, written with full precision; flushed.
  void Row(const std::vector<double>& values);
  // Mixed text/number rows (text is written as is: no commas).
  void TextRow(const std::vector<std::string>& values);
  const std::string& path() const { return path_; }

 private:
  CsvWriter(std::string path, size_t columns, std::unique_ptr<std::ofstream> out)
      : path_(std::move(path)), columns_(columns), out_(std::move(out)) {}
  std::string path_;
  size_t columns_;
  std::unique_ptr<std::ofstream> out_;
};

// The first `step` (first column) whose `column` is >= `threshold` in a CSV
// written by RunTrainLoop (resumed runs included: their rows are appended);
// -1 when no row reaches it. An error names the file or the missing column.
absl::StatusOr<int64_t> FirstStepAtLeast(const std::string& path, const std::string& column,
                                         double threshold);

// The last row's values (NaN where a cell is empty) of `columns` in a CSV
// written by RunTrainLoop; empty when the file has no data row. An error
// names the file or the missing column.
absl::StatusOr<std::vector<double>> LastRowValues(const std::string& path,
                                                  const std::vector<std::string>& columns);

// Drops the data rows whose `step` (first column) is above `step` (a run
// killed between checkpoints logged steps its resume repeats), keeping the
// header and every other line; the file is replaced atomically. A missing
// file is fine (nothing to drop).
absl::Status DropRowsAfterStep(const std::string& path, int64_t step);

// Creates `dir` and its parents; an error names the directory.
absl::Status MakeDirs(const std::string& dir);

// A path the user gave on the command line: under `bazel run` a relative
// path is taken from the folder bazel was started in
// ($BUILD_WORKING_DIRECTORY), not from the runfiles folder the binary runs
// in.
std::string UserPath(const std::string& path);

// UserPath(flag_value) if non-empty, else <workspace>/out/<name> under
// `bazel run` ($BUILD_WORKSPACE_DIRECTORY), else out/<name>.
std::string OutputDir(const std::string& flag_value, const std::string& name);

// Draws a figure with tools/plot.py (Debian's python3-matplotlib):
// `/usr/bin/python3 <workspace>/tools/plot.py <figure> <out_dir>`. An error
// quotes the command so the user can rerun it.
absl::Status RunPlot(const std::string& figure, const std::string& out_dir);

}  // namespace experiments
}  // namespace indexgrad
