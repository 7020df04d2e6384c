// Progress line with rate and ETA for training loops:
//
//   Progress progress("identity n=64", /*total=*/steps);
//   for (...) { ...; progress.Update(step + 1, absl::StrFormat("loss %.4f", l)); }
//   progress.Finish();
//
// Prints at most about twice per second (and on the last step) to stderr:
//   [identity n=64] 1200/5000  24%  812.3 it/s  ETA 0:04  loss 0.0123
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace indexgrad {
namespace experiments {

class Progress {
 public:
  Progress(std::string label, int64_t total, int64_t start = 0);
  // `done` steps are complete; `status` is appended to the line.
  void Update(int64_t done, const std::string& status = "");
  // Prints the final line; returns the seconds since construction.
  double Finish(const std::string& status = "");
  double ElapsedSeconds() const;

 private:
  void Print(int64_t done, const std::string& status);

  std::string label_;
  int64_t total_;
  int64_t start_;
  int64_t last_done_ = 0;
  int64_t last_printed_ = -1;
  std::chrono::steady_clock::time_point begin_;
  std::chrono::steady_clock::time_point last_print_;
};

// "1:02:03" / "2:03"
std::string FormatDuration(double seconds);

}  // namespace experiments
}  // namespace indexgrad
