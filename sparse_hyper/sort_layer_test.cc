// Tests of SortLayer (the differentiable quicksort), the sort losses and
// metrics: exact sorts with far-apart keys (random arrays, ties, n not a
// power of two, n = 1), evaluation mode, intermediate targets against the
// paper's definition (fails on the level-0 bug), finite-difference
// gradients in double, metrics on known cases, bad input.
#include "sparse_hyper/sort_layer.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <algorithm>
#include <vector>

#include "kernels/half_permutation/half_permutation.h"
#include "kernels/testing/expect_error.h"
#include "kernels/testing/gradcheck.h"

namespace indexgrad {
namespace sparse_hyper {
namespace {

const auto kDouble = at::TensorOptions().dtype(at::kDouble);

// Sorts each row by std::stable_sort (the independent reference).
at::Tensor ReferenceSort(const at::Tensor& keys, const at::Tensor& values) {
  at::Tensor out = at::empty_like(values);
  for (int64_t b = 0; b < keys.size(0); ++b) {
    std::vector<int64_t> idx(keys.size(1));
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t x, int64_t y) {
      return keys[b][x].item<double>() < keys[b][y].item<double>();
    });
    for (size_t i = 0; i < idx.size(); ++i) out[b][i] = values[b][idx[i]];
  }
  return out;
}

TEST(SortLayer, FarApartKeysSortExactlyForAnyN) {
  SortLayer sorter(SortLayerOptions().num_samples(3));
  at::manual_seed(0);
  for (int64_t n : {1, 2, 3, 5, 8, 13, 16, 33}) {
    // Distinct ranks, 1e6 apart (the authors' code returns NaN here).
    const at::Tensor keys = at::argsort(at::rand({4, n}, kDouble), int64_t{1}).to(at::kDouble) * 1e6;
    const at::Tensor values = at::randn({4, n, 2, 3}, kDouble);
    const SortOutput out = sorter->forward(keys, values);
    ASSERT_EQ(out.output.sizes(), values.sizes());
    EXPECT_FALSE(at::isnan(out.output).any().item<bool>()) << "n = " << n;
    EXPECT_TRUE(at::allclose(out.output, ReferenceSort(keys, values), 0, 1e-12)) << "n = " << n;
    int64_t levels = 0;
    while ((int64_t{1} << levels) < n) ++levels;
    EXPECT_EQ(static_cast<int64_t>(out.levels.size()), std::max<int64_t>(levels, 1));
  }
}

TEST(SortLayer, RunsOnCudaAndAgreesWithTheCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  // Two layers: each counts its calls into the seed.
  SortLayer sorter(SortLayerOptions().num_samples(2).seed(3));
  SortLayer gpu_sorter(SortLayerOptions().num_samples(2).seed(3));
  at::manual_seed(1);
  const at::Tensor keys = at::randn({4, 32}, kDouble).requires_grad_();
  const at::Tensor gpu_keys = keys.detach().cuda().requires_grad_();
  const at::Tensor values = at::randn({4, 32, 3}, kDouble);
  const SortOutput a = sorter->forward(keys, values);
  const SortOutput b = gpu_sorter->forward(gpu_keys, values.cuda());
  EXPECT_TRUE(at::allclose(b.output.cpu(), a.output, 1e-10, 1e-12));
  a.output.sum().backward();
  b.output.sum().backward();
  EXPECT_TRUE(at::allclose(gpu_keys.grad().cpu(), keys.grad(), 1e-8, 1e-10));
}

// Ties: keys equal to their bucket's median get o' = 1/2, so the paper's
// proportions split evenly between the tied keys' arrangements (when both
// are among the candidates), and the stable partitions of those
// arrangements differ by more than the tied items: the output mixes
// values. Each level is doubly stochastic, so sums are kept, outputs stay
// convex combinations and nothing is NaN. Ties away from every median
// (equal keys that never straddle a median) sort exactly.
TEST(SortLayer, TiedKeysGiveConvexMixturesAndExactSortsAwayFromMedians) {
  SortLayer sorter(SortLayerOptions().num_samples(3));
  at::manual_seed(4);
  for (int64_t n : {4, 7, 16}) {
    const at::Tensor keys = at::randint(0, 3, {5, n}, kDouble) * 1e6;  // many ties
    const at::Tensor values = at::rand({5, n, 2}, kDouble);
    const SortOutput out = sorter->forward(keys, values);
    EXPECT_FALSE(at::isnan(out.output).any().item<bool>());
    EXPECT_TRUE(at::allclose(out.output.sum(1), values.sum(1), 1e-12, 1e-12)) << n;
    EXPECT_TRUE(out.output.min().item<double>() >= values.min().item<double>() - 1e-12);
    EXPECT_TRUE(out.output.max().item<double>() <= values.max().item<double>() + 1e-12);
  }
  // 8 keys in pairs of equal keys: every median falls between two pairs.
  const at::Tensor keys = at::tensor({3.0, 1.0, 0.0, 2.0, 1.0, 3.0, 2.0, 0.0}, kDouble).view({1, 8}) * 1e6;
  const SortOutput out = sorter->forward(keys, keys.unsqueeze(2));
  EXPECT_TRUE(at::equal(out.output.squeeze(2), std::get<0>(keys.sort(1))));
}

TEST(SortLayer, TiedKeysKeepTheirOrderInEvaluation) {
  SortLayer sorter;
  sorter->eval();
  const at::Tensor keys = at::tensor({2.0, 1.0, 2.0, 1.0, 0.0}, kDouble).view({1, 5});
  const at::Tensor values = at::arange(5, kDouble).view({1, 5, 1});
  const SortOutput out = sorter->forward(keys, values);
  const std::vector<int64_t> expect = {4, 1, 3, 0, 2};
  for (int64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(out.permutation[0][i].item<int64_t>(), expect[i]);
    EXPECT_EQ(out.output[0][i][0].item<double>(), expect[i]);
  }
}

TEST(SortLayer, OutputIsAMixtureOfValuesWhenKeysAreClose) {
  at::manual_seed(3);
  SortLayer sorter(SortLayerOptions().num_samples(4).temperature(1.0).seed(5));
  const at::Tensor keys = at::randn({2, 8}, kDouble) * 0.1;
  // Every level's matrix has rows of a permutation mixture: ones stay ones.
  const at::Tensor ones = at::ones({2, 8, 1}, kDouble);
  EXPECT_TRUE(at::allclose(sorter->forward(keys, ones).output, ones, 1e-12, 1e-12));
  // Distinct values 0..7: every output is a convex combination of them, and
  // with keys this close some output lies strictly between two values,
  // which no hard permutation gives.
  const at::Tensor values = at::arange(8, kDouble).repeat({2, 1}).unsqueeze(2);  // [2, 8, 1]
  const at::Tensor out = sorter->forward(keys, values).output;
  EXPECT_TRUE(out.ge(-1e-12).all().item<bool>());
  EXPECT_TRUE(out.le(7 + 1e-12).all().item<bool>());
  const at::Tensor off_grid = (out - out.round()).abs().gt(1e-3);
  EXPECT_GT(off_grid.sum().item<int64_t>(), 0) << out.squeeze(2);
}

TEST(SortLayer, GradientMatchesFiniteDifferences) {
  at::manual_seed(1);
  for (int64_t n : {8, 6}) {
    // Ranks 0.1 apart, jittered: no finite difference crosses a rank.
    const at::Tensor keys = at::randperm(n, at::kLong).to(at::kDouble).view({1, n}) * 0.1 +
                            at::rand({1, n}, kDouble) * 0.01;
    const at::Tensor values = at::rand({1, n, 3}, kDouble);
    auto f = [&](const std::vector<at::Tensor>& in) {
      SortLayer sorter(SortLayerOptions().num_samples(3).temperature(5.0).seed(4));
      return sorter->forward(in[0], in[1]).output;
    };
    EXPECT_LT(testing::max_gradient_error(f, {keys.clone(), values.clone()}, 0), 1e-7) << n;
    EXPECT_LT(testing::max_gradient_error(f, {keys.clone(), values.clone()}, 1), 1e-7) << n;
  }
}

// With keys in the target's order (and far apart), feeding the target back
// through each level's own transpose gives that level's output: t_i = x_i.
// The authors' script used level 0's permutation at every level; that
// would give t_i != x_i below the last level.
TEST(SortLoss, IntermediateTargetsAreEachLevelsTranspose) {
  at::manual_seed(2);
  SortLayer sorter(SortLayerOptions().num_samples(2));
  const at::Tensor keys = at::argsort(at::rand({3, 16}, kDouble), int64_t{1}).to(at::kDouble) * 1e3;
  const at::Tensor values = at::rand({3, 16, 4}, kDouble);
  const SortOutput out = sorter->forward(keys, values);
  const at::Tensor target = ReferenceSort(keys, values);
  const std::vector<at::Tensor> t = IntermediateTargets(out, target);
  ASSERT_EQ(t.size(), 4u);
  for (size_t i = 0; i < t.size(); ++i) {
    EXPECT_TRUE(at::allclose(t[i], out.levels[i], 0, 1e-12)) << "level " << i;
  }
  // The level-0 bug gives other targets.
  const at::Tensor buggy = half_permutation_apply(out.steps[0].first, out.steps[0].second,
                                                  target, /*transpose=*/true);
  EXPECT_FALSE(at::allclose(buggy, out.levels[2], 0, 1e-6));
  // And the loss is zero up to clamping where every level matches.
  const double loss = SortLoss(out, target, {SortLossOptions::Kind::kMse, true}).item<double>();
  EXPECT_LT(loss, 1e-20);
}

TEST(SortLoss, IntermediateTargetsAgreeWithDenseTransposes) {
  at::manual_seed(3);
  SortLayer sorter(SortLayerOptions().num_samples(3).temperature(2.0));
  const at::Tensor keys = at::randn({2, 8}, kDouble);
  const at::Tensor values = at::rand({2, 8, 1}, kDouble);
  const SortOutput out = sorter->forward(keys, values);
  const at::Tensor target = at::rand({2, 8, 1}, kDouble);
  const std::vector<at::Tensor> t = IntermediateTargets(out, target);
  at::Tensor expect = target.view({2, 8});
  for (int64_t level = 2; level >= 1; --level) {
    // Dense P of this level by loops, then t_{i-1} = P^T t_i.
    const auto& [rows, weights] = out.steps[level];
    at::Tensor P = at::zeros({2, 8, 8}, kDouble);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t i = 0; i < 8; ++i)
        for (int64_t k = 0; k < rows.size(2); ++k)
          P[b][rows[b][i][k].item<int64_t>()][i] += weights[b][i][k];
    expect = at::bmm(P.transpose(1, 2), expect.unsqueeze(2)).squeeze(2);
    EXPECT_TRUE(at::allclose(t[level - 1].view({2, 8}), expect, 1e-12, 1e-14)) << level;
  }
}

TEST(SortLoss, FinalOnlyIsBinaryCrossEntropy) {
  const at::Tensor out = at::tensor({0.25, 0.5}, kDouble).view({1, 2, 1});
  const at::Tensor target = at::tensor({0.0, 1.0}, kDouble).view({1, 2, 1});
  SortOutput o{out, {out}, {}, {}};
  const double expect = -(std::log(0.75) + std::log(0.5)) / 2;
  EXPECT_NEAR(SortLoss(o, target).item<double>(), expect, 1e-12);
  EXPECT_ERROR_CONTAINS(SortLoss(o, target.view({1, 2})), "target must have the shape");
}

TEST(SortMetrics, KnownCases) {
  const at::Tensor values = at::tensor({3, 1, 2, 5, 5, 4}, at::kLong).view({2, 3});
  // Row 0 right; row 1: the two 5s swapped is still right (ties).
  SortMetrics m = ComputeSortMetrics(values, at::tensor({1, 2, 0, 2, 1, 0}, at::kLong).view({2, 3}));
  EXPECT_DOUBLE_EQ(m.exact, 1.0);
  EXPECT_DOUBLE_EQ(m.elementwise, 1.0);
  // Row 0 reversed (one position right), row 1 right.
  m = ComputeSortMetrics(values, at::tensor({0, 2, 1, 2, 0, 1}, at::kLong).view({2, 3}));
  EXPECT_DOUBLE_EQ(m.exact, 0.5);
  EXPECT_DOUBLE_EQ(m.elementwise, 4.0 / 6);
  // Row 0 shows values 3, 2, 1 at positions 0, 1, 2 (true ranks 2, 1, 0):
  // d^2 = 4 + 0 + 4, rho = 1 - 6 * 8 / 24 = -1; row 1 is right: rho = 1.
  EXPECT_DOUBLE_EQ(m.spearman, (-1.0 + 1.0) / 2);
  // Ties: equal numbers in either order score 1; one swap of distinct
  // neighbours in n = 4 scores 1 - 6 * 2 / 60 = 0.8.
  const at::Tensor tied = at::tensor({1, 1, 2, 3}, at::kLong).view({1, 4});
  EXPECT_DOUBLE_EQ(ComputeSortMetrics(tied, at::tensor({1, 0, 2, 3}, at::kLong).view({1, 4})).spearman, 1.0);
  EXPECT_DOUBLE_EQ(ComputeSortMetrics(tied, at::tensor({0, 1, 3, 2}, at::kLong).view({1, 4})).spearman, 0.8);
}

TEST(SortLayer, BadInputIsAClearError) {
  SortLayer sorter;
  const at::Tensor keys = at::randn({2, 4});
  EXPECT_ERROR_CONTAINS(sorter->forward(keys, at::randn({3, 4, 2})),
                        "values must be [batch, n, ...] with batch = 2 and n = 4");
  EXPECT_ERROR_CONTAINS(sorter->forward(at::randn({2, 0}), at::randn({2, 0, 1})),
                        "keys must hold n >= 1 keys per row");
  EXPECT_ERROR_CONTAINS(sorter->forward(keys.view({8}), at::randn({8, 1})),
                        "keys must have 2 dimensions");
  at::Tensor bad = keys.clone();
  bad[0][1] = INFINITY;
  EXPECT_ERROR_CONTAINS(sorter->forward(bad, at::randn({2, 4, 1})), "keys contain NaN or infinity");
  EXPECT_ERROR_CONTAINS(sorter->forward(keys, at::randn({2, 4, 1}, kDouble)),
                        "keys and values must have the same dtype");
  EXPECT_ERROR_CONTAINS(SortLayer(SortLayerOptions().num_samples(-1)),
                        "num_samples must be >= 0, got -1");
  EXPECT_ERROR_CONTAINS(SortLayer(SortLayerOptions().temperature(0)),
                        "temperature must be a positive finite number");
}

}  // namespace
}  // namespace sparse_hyper
}  // namespace indexgrad
