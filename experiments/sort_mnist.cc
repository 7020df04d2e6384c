// MNIST sorting experiment: Bloem et al. 2018 section 3.3 (3-digit numbers,
// n = 4, 8, 16) and the NeuralSort benchmark (4-digit numbers, n = 3 .. 15),
// with the differentiable quicksort, NeuralSort and SoftSort on the same key
// network and budget. Writes, under --out_dir:
//   runs/<method>_n<n>_s<seed>.csv   per step: loss; at evaluations the
//                                    validation exact-match, element-wise
//                                    accuracy and Spearman correlation
//   runs/<method>_n<n>_s<seed>.ckpt  checkpoint (a rerun resumes)
//   summary.csv, summary.md          test metrics per run / per (method, n)
//   levels_n<n>.csv                  figure 7 data (quicksort levels)
//   sort_mnist.png, levels_n<n>.png  tools/plot.py sort
//
//   bazel run //experiments:sort_mnist                          # minutes, CPU
//   bazel run //experiments:sort_mnist -- --preset=paper        # the paper's runs
//   bazel run //experiments:sort_mnist -- --preset=neuralsort   # NeuralSort's table
#include <cstdio>
#include <fstream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "experiments/common/csv.h"
#include "experiments/common/device.h"
#include "experiments/common/main.h"
#include "experiments/common/summary.h"
#include "experiments/common/threads.h"
#include "experiments/sort_mnist_presets.h"
#include "experiments/sort_mnist_run.h"
#include "datasets/idx.h"

ABSL_FLAG(std::string, preset, "default",
          "default: n = 4, 3-digit numbers, small key network, 2 seeds, 400 steps "
          "(minutes on 2 CPU cores, not converged); paper: n = 4, 8, 16, 3 digits, the "
          "paper's key network, batch 64, lr 5e-5, a = n; neuralsort: n = 3, 5, 7, 9, "
          "15, 4 digits. Explicit flags override the preset.");
ABSL_FLAG(std::string, methods, "quicksort,neuralsort,softsort",
          "comma-separated: quicksort, neuralsort, softsort");
ABSL_FLAG(std::string, sizes, "", "comma-separated n (preset if empty)");
ABSL_FLAG(int64_t, digits, -1, "digits per number (preset if < 0)");
ABSL_FLAG(int64_t, seeds, -1, "runs per (method, n) (preset if < 0)");
ABSL_FLAG(int64_t, steps, -1, "training steps per run (preset if < 0)");
ABSL_FLAG(int64_t, batch, -1, "sequences per batch (preset if < 0)");
ABSL_FLAG(double, lr, -1, "Adam learning rate (preset if < 0)");
ABSL_FLAG(int64_t, num_samples, -1,
          "quicksort: random candidates per bucket, a (preset if < 0; 0 allowed)");
ABSL_FLAG(double, temperature, 10.0, "quicksort: C of sigmoid(C (x - median))");
ABSL_FLAG(bool, intermediate, true, "quicksort: the paper's intermediate loss");
ABSL_FLAG(double, tau, 1.0, "NeuralSort / SoftSort temperature");
ABSL_FLAG(std::string, keynet, "", "small or paper (preset if empty)");
ABSL_FLAG(int64_t, eval_every, -1, "steps between validations (preset if < 0)");
ABSL_FLAG(int64_t, val_size, -1, "validation sequences (preset if < 0)");
ABSL_FLAG(int64_t, test_size, -1, "test sequences, from the 10,000 test digits (preset if < 0)");
ABSL_FLAG(int64_t, seed, 0, "base random seed");
ABSL_FLAG(std::string, data_dir, "", "folder with mnist/ IDX files (default: $INDEXGRAD_DATA_DIR, else <workspace>/data)");
ABSL_FLAG(std::string, out_dir, "", "output folder (default <workspace>/out/sort_mnist)");
ABSL_FLAG(bool, resume, true, "resume runs from their checkpoints");
ABSL_FLAG(bool, plot, true, "draw the figures with tools/plot.py");

namespace {

namespace ig = indexgrad;
namespace ex = indexgrad::experiments;

absl::StatusOr<ex::SortPreset> PresetFromFlags() {
  absl::StatusOr<ex::SortPreset> p = ex::SortPresetNamed(absl::GetFlag(FLAGS_preset));
  if (!p.ok()) return p.status();
  ex::SortFlagOverrides o;
  o.methods = absl::GetFlag(FLAGS_methods);
  o.sizes = absl::GetFlag(FLAGS_sizes);
  o.digits = absl::GetFlag(FLAGS_digits);
  o.seeds = absl::GetFlag(FLAGS_seeds);
  o.steps = absl::GetFlag(FLAGS_steps);
  o.batch = absl::GetFlag(FLAGS_batch);
  o.lr = absl::GetFlag(FLAGS_lr);
  o.num_samples = absl::GetFlag(FLAGS_num_samples);
  o.keynet = absl::GetFlag(FLAGS_keynet);
  o.eval_every = absl::GetFlag(FLAGS_eval_every);
  o.val_size = absl::GetFlag(FLAGS_val_size);
  o.test_size = absl::GetFlag(FLAGS_test_size);
  o.temperature = absl::GetFlag(FLAGS_temperature);
  o.tau = absl::GetFlag(FLAGS_tau);
  if (absl::Status st = ex::ApplySortOverrides(o, &*p); !st.ok()) return st;
  return p;
}

absl::Status Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Learns to sort MNIST numbers through differentiable sorts (Bloem et al. "
      "2018 section 3.3; NeuralSort's benchmark).");
  absl::ParseCommandLine(argc, argv);
  if (absl::StatusOr<int> threads = ex::ApplyThreadsFlag(); !threads.ok()) {
    return threads.status();
  }
  absl::StatusOr<ex::SortPreset> preset = PresetFromFlags();
  if (!preset.ok()) return preset.status();
  const absl::StatusOr<torch::Device> device = ex::DeviceFromFlag();
  if (!device.ok()) return device.status();

  std::string data_dir = ex::UserPath(absl::GetFlag(FLAGS_data_dir));
  if (data_dir.empty()) data_dir = ig::data::DefaultDataDir();
  auto train = ig::data::LoadImageSet(data_dir, "mnist", ig::data::Split::kTrain);
  if (!train.ok()) return train.status();
  auto val = ig::data::LoadImageSet(data_dir, "mnist", ig::data::Split::kValidation);
  if (!val.ok()) return val.status();
  auto test = ig::data::LoadImageSet(data_dir, "mnist", ig::data::Split::kTest);
  if (!test.ok()) return test.status();
  const auto train_pool = ig::sparse_hyper::DigitPool::FromImages(train->images, train->labels);
  const auto val_pool = ig::sparse_hyper::DigitPool::FromImages(val->images, val->labels);
  const auto test_pool = ig::sparse_hyper::DigitPool::FromImages(test->images, test->labels);

  const std::string out_dir = ex::OutputDir(absl::GetFlag(FLAGS_out_dir), "sort_mnist");
  if (auto st = ex::MakeDirs(out_dir + "/runs"); !st.ok()) return st;
  auto summary_csv = ex::CsvWriter::Open(
      out_dir + "/summary.csv",
      {"method", "n", "digits", "seed", "steps", "test_exact", "test_elementwise",
       "test_spearman", "val_exact", "final_loss", "seconds"});
  if (!summary_csv.ok()) return summary_csv.status();
  std::printf("sort_mnist: preset %s, %s, output in %s\n", absl::GetFlag(FLAGS_preset).c_str(),
              ex::DescribeSortPreset(*preset).c_str(), out_dir.c_str());

  std::vector<ex::SortRunResult> runs;
  for (int64_t n : preset->sizes) {
    // Fixed evaluation sequences per n: validation from the validation
    // digits, test from the test digits only.
    std::mt19937_64 eval_rng(absl::GetFlag(FLAGS_seed) * 1000 + n);
    const auto val_seqs = SampleSortBatch(val_pool, preset->val_size, n, preset->digits, eval_rng);
    const auto test_seqs = SampleSortBatch(test_pool, preset->test_size, n, preset->digits, eval_rng);
    for (const std::string& method : preset->methods) {
      for (int64_t s = 0; s < preset->seeds; ++s) {
        ex::SortRunConfig c = ex::RunConfigFor(*preset, method, n);
        c.seed = absl::GetFlag(FLAGS_seed) + s;
        c.intermediate = absl::GetFlag(FLAGS_intermediate);
        c.resume = absl::GetFlag(FLAGS_resume);
        c.run_dir = out_dir + "/runs";
        c.device = *device;
        if (method == "quicksort" && s == 0 && n >= 2) {
          const std::string path = absl::StrCat(out_dir, "/levels_n", n, ".csv");
          if (auto st = ex::WriteLevelsFigure(c, val_seqs, path); !st.ok()) {
            return st;
          }
        }
        absl::StatusOr<ex::SortRunResult> r = ex::RunSortMnist(c, train_pool, val_seqs, test_seqs);
        if (!r.ok()) return r.status();
        summary_csv->TextRow({method, absl::StrCat(n), absl::StrCat(c.digits),
                              absl::StrCat(c.seed), absl::StrCat(r->steps_done),
                              absl::StrCat(r->test.exact), absl::StrCat(r->test.elementwise),
                              absl::StrCat(r->test.spearman), absl::StrCat(r->validation.exact),
                              absl::StrCat(r->final_loss), absl::StrCat(r->seconds)});
        runs.push_back(*r);
      }
    }
  }
  const std::string md = ex::SortSummaryMarkdown(runs);
  if (auto st = ex::WriteSummaryMarkdown(out_dir, md); !st.ok()) {
    return st;
  }
  if (absl::GetFlag(FLAGS_plot)) {
    if (auto st = ex::RunPlot("sort", out_dir); !st.ok()) {
      std::fprintf(stderr, "sort_mnist: %s\n", std::string(st.message()).c_str());
    }
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  return indexgrad::experiments::RunMain("sort_mnist", Main, argc, argv);
}
