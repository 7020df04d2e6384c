// Identity experiment of Bloem et al. 2018, section 3.1 / figure 2: learn the
// n x n identity with the sampled sparse layer and with the REINFORCE
// baseline, for several n and repeats. Writes, under --out_dir:
//   runs/<method>_n<n>_r<repeat>.csv   per step: loss, and at evaluation
//                                      steps the expected MSE of the rounded
//                                      W, on-diagonal fraction, exact (0/1)
//   runs/<method>_n<n>_r<repeat>.ckpt  checkpoint (a rerun resumes)
//   summary.csv, summary.md            per run: converged, steps, wall time
//   identity.png                       figure 2 (tools/plot.py)
//
//   bazel run //experiments:identity                     # a few minutes
//   bazel run //experiments:identity -- --preset=paper   # the paper's runs
//   bazel run //experiments:identity -- --methods=sparse --sizes=1024,4096
// (The flags: experiments/identity_flags.cc.)
#include <cstdio>

#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "experiments/common/csv.h"
#include "experiments/common/main.h"
#include "experiments/common/summary.h"
#include "experiments/common/threads.h"
#include "experiments/identity_flags.h"
#include "experiments/identity_run.h"

namespace {

namespace ex = indexgrad::experiments;

absl::Status Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Learns the n x n identity with the sampled sparse layer and the "
      "REINFORCE baseline (Bloem et al. 2018, section 3.1).");
  absl::ParseCommandLine(argc, argv);
  if (absl::StatusOr<int> threads = indexgrad::experiments::ApplyThreadsFlag(); !threads.ok()) {
    return threads.status();
  }
  absl::StatusOr<ex::IdentityPlan> plan = ex::IdentityPlanFromFlags();
  if (!plan.ok()) return plan.status();

  const std::string& out_dir = plan->out_dir;
  const std::string run_dir = out_dir + "/runs";
  if (auto st = ex::MakeDirs(run_dir); !st.ok()) {
    return st;
  }
  auto summary_csv = ex::CsvWriter::Open(
      out_dir + "/summary.csv",
      {"method", "n", "repeat", "converged", "steps_to_identity", "steps_done",
       "final_loss", "final_eval_mse", "seconds"});
  if (!summary_csv.ok()) return summary_csv.status();
  std::printf("identity: preset %s, sizes", plan->preset.c_str());
  for (int64_t n : plan->sizes) std::printf(" %lld", static_cast<long long>(n));
  std::printf(", %lld repeats, output in %s\n", static_cast<long long>(plan->repeats),
              out_dir.c_str());

  std::vector<ex::IdentityRunSummary> runs;
  for (const std::string& method : plan->methods) {
    for (int64_t n : plan->sizes) {
      for (int64_t r = 0; r < plan->repeats; ++r) {
        absl::StatusOr<ex::IdentityRunSummary> run =
            ex::RunIdentity(ex::IdentityConfigFromFlags(*plan, method, n, r, run_dir));
        if (!run.ok()) return run.status();
        summary_csv->TextRow(
            {run->method, absl::StrCat(run->n), absl::StrCat(run->repeat),
             run->converged ? "1" : "0", absl::StrCat(run->steps_to_identity),
             absl::StrCat(run->steps_done), absl::StrCat(run->final_loss),
             absl::StrCat(run->final_eval_mse), absl::StrCat(run->seconds)});
        runs.push_back(*run);
      }
    }
  }

  const std::string md = ex::IdentitySummaryMarkdown(plan->methods, plan->sizes, runs);
  if (auto st = ex::WriteSummaryMarkdown(out_dir, md); !st.ok()) {
    return st;
  }

  if (plan->plot) {
    if (auto st = ex::RunPlot("identity", out_dir); !st.ok()) {
      std::fprintf(stderr, "identity: %s\n", std::string(st.message()).c_str());
    }
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  return indexgrad::experiments::RunMain("identity", Main, argc, argv);
}
