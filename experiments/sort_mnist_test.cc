// Tests of the sorting experiment's library: every method learns to sort
// synthetic digits end to end (CSV and checkpoint written, a rerun resumes),
// the levels figure, presets and flag checks, the summary table.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "experiments/sort_mnist_presets.h"
#include "experiments/sort_mnist_run.h"
#include "kernels/testing/scratch.h"

namespace indexgrad {
namespace experiments {
namespace {

namespace sh = sparse_hyper;

// Digits whose image is a noisy constant (label + 1) / 11: learnable in a
// few hundred steps.
sh::DigitPool NoisyPool(int64_t seed) {
  at::manual_seed(seed);
  const at::Tensor labels = at::arange(200, at::kLong) % 10;
  const at::Tensor images =
      ((labels.to(at::kFloat) + 1) / 11).view({200, 1, 1}) + at::rand({200, 28, 28}) * 0.05;
  return sh::DigitPool::FromImages(images.clamp(0, 1), labels);
}

TEST(SortMnist, EveryMethodLearnsToSortAndResumes) {
  const sh::DigitPool pool = NoisyPool(0);
  std::mt19937_64 rng(5);
  const sh::SortBatch val = SampleSortBatch(pool, 100, 4, 1, rng);
  const sh::SortBatch test = SampleSortBatch(NoisyPool(1), 200, 4, 1, rng);
  for (const char* method : {"quicksort", "neuralsort", "softsort"}) {
    SortRunConfig c;
    c.method = method;
    c.n = 4;
    c.digits = 1;
    c.steps = 300;
    c.batch = 16;
    c.lr = 3e-3;
    c.num_samples = 4;
    c.eval_every = 100;
    c.run_dir = testing::ScratchDir(method);
    // Before training the keys are arbitrary.
    sh::KeyNetwork untrained(sh::KeyNetworkOptions(1));
    const double before = EvaluateKeys(untrained, test).exact;
    absl::StatusOr<SortRunResult> r = RunSortMnist(c, pool, val, test);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->steps_done, 300);
    EXPECT_GT(r->test.exact, 0.9) << method << " (untrained: " << before << ")";
    EXPECT_GT(r->test.spearman, 0.95) << method;
    EXPECT_TRUE(std::ifstream(c.run_dir + "/" + r->name + ".csv").good());
    // A rerun finds the finished run's checkpoint: no steps, same metrics.
    absl::StatusOr<SortRunResult> again = RunSortMnist(c, pool, val, test);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_DOUBLE_EQ(again->test.exact, r->test.exact) << method;
  }
}

TEST(SortMnist, LevelsFigureHasOneImageRowPerLevel) {
  const sh::DigitPool pool = NoisyPool(2);
  std::mt19937_64 rng(3);
  const sh::SortBatch data = SampleSortBatch(pool, 2, 5, 2, rng);  // n = 5 pads to 8
  SortRunConfig c;
  c.n = 5;
  c.digits = 2;
  const std::string path = testing::ScratchDir("levels") + "/levels.csv";
  ASSERT_TRUE(WriteLevelsFigure(c, data, path).ok());
  std::ifstream f(path);
  std::string line;
  int64_t rows = 0, cols = 0;
  while (std::getline(f, line)) {
    ++rows;
    cols = std::count(line.begin(), line.end(), ',') + 1;
  }
  // x_0 .. x_3 and t_0 .. t_3: 4 rows of 28 pixels + 4-pixel gaps; two
  // sides of 8 numbers x 56 pixels and a 14-pixel gap.
  EXPECT_EQ(rows, 4 * 32);
  EXPECT_EQ(cols, 2 * 8 * 56 + 14);
}

TEST(SortMnistPresets, PresetsAndFlagChecks) {
  absl::StatusOr<SortPreset> p = SortPresetNamed("neuralsort");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->sizes, (std::vector<int64_t>{3, 5, 7, 9, 15}));
  EXPECT_EQ(p->digits, 4);
  EXPECT_EQ(RunConfigFor(*p, "quicksort", 9).num_samples, 9);  // a = n
  EXPECT_FALSE(SortPresetNamed("fast").ok());
  SortFlagOverrides o;
  o.sizes = "4,8";
  o.num_samples = 0;
  ASSERT_TRUE(ApplySortOverrides(o, &*p).ok());
  EXPECT_EQ(RunConfigFor(*p, "quicksort", 8).num_samples, 0);
  auto error = [&](SortFlagOverrides bad) {
    SortPreset q;
    return std::string(ApplySortOverrides(bad, &q).message());
  };
  SortFlagOverrides bad;
  bad.sizes = "4,x";
  EXPECT_EQ(error(bad), "--sizes must be integers >= 2, got 'x'");
  bad = {};
  bad.methods = "quicksort,bubble";
  EXPECT_EQ(error(bad), "--methods must be quicksort, neuralsort and/or softsort, got 'bubble'");
  bad = {};
  bad.lr = 0;
  EXPECT_EQ(error(bad), "--lr must be a positive finite number, got 0");
  bad = {};
  bad.batch = 0;
  EXPECT_EQ(error(bad), "--batch must be an integer >= 1, got 0");
  bad = {};
  bad.digits = 12;
  EXPECT_EQ(error(bad), "--digits must be in [1, 9], got 12");
  bad = {};
  bad.tau = -1;
  EXPECT_EQ(error(bad), "--tau must be a positive finite number, got -1");
  bad = {};
  bad.keynet = "large";
  EXPECT_EQ(error(bad), "--keynet must be small or paper, got large");
}

TEST(SortMnistPresets, SummaryTableGroupsSeeds) {
  SortRunResult a, b;
  a.config.method = b.config.method = "quicksort";
  a.config.n = b.config.n = 4;
  a.test.exact = 0.5;
  b.test.exact = 0.7;
  a.steps_done = b.steps_done = 10;
  const std::string md = SortSummaryMarkdown({a, b});
  EXPECT_NE(md.find("| quicksort | 4 | 3 | 2 | 10 | 0.600 (0.500-0.700) |"), std::string::npos) << md;
}

}  // namespace
}  // namespace experiments
}  // namespace indexgrad
