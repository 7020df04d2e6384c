#include "experiments/common/progress.h"

#include <cstdio>

#include "absl/strings/str_format.h"

namespace indexgrad {
namespace experiments {

Progress::Progress(std::string label, int64_t total, int64_t start)
    : label_(std::move(label)),
      total_(total),
      start_(start),
      last_done_(start),
      begin_(std::chrono::steady_clock::now()),
      last_print_(begin_) {}

double Progress::ElapsedSeconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                       begin_)
      .count();
}

void Progress::Update(int64_t done, const std::string& status) {
  last_done_ = done;
  const auto now = std::chrono::steady_clock::now();
  if (done < total_ &&
      std::chrono::duration<double>(now - last_print_).count() < 0.5) {
    return;
  }
  last_print_ = now;
  Print(done, status);
}

double Progress::Finish(const std::string& status) {
  if (last_printed_ != last_done_ || !status.empty()) Print(last_done_, status);
  return ElapsedSeconds();
}

void Progress::Print(int64_t done, const std::string& status) {
  last_printed_ = done;
  const double elapsed = ElapsedSeconds();
  const double rate = elapsed > 0 ? (done - start_) / elapsed : 0.0;
  const double eta = rate > 0 ? (total_ - done) / rate : 0.0;
  std::fprintf(stderr, "[%s] %lld/%lld %3.0f%%  %.1f it/s  ETA %s  %s\n",
               label_.c_str(), static_cast<long long>(done),
               static_cast<long long>(total_),
               total_ > 0 ? 100.0 * done / total_ : 100.0, rate,
               FormatDuration(eta).c_str(), status.c_str());
}

std::string FormatDuration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) {
    return absl::StrFormat("%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
  }
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

}  // namespace experiments
}  // namespace indexgrad
