// Tests of the sort interface: PermuteRows and HardSort against stable-sort
// loops, intermediate targets and SortLoss on hand-built half-permutations
// (known values and finite-difference gradients), ComputeSortMetrics
// against a loop reference and known cases, and errors by message.
#include "sparse_hyper/sorting.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/testing/expect_error.h"
#include "kernels/testing/gradcheck.h"

namespace indexgrad {
namespace sparse_hyper {
namespace {

const auto kDouble = at::TensorOptions().dtype(at::kDouble);

// The stable ascending order of each row by std::stable_sort: [batch, n].
at::Tensor ReferenceOrder(const at::Tensor& keys) {
  at::Tensor out = at::empty(keys.sizes(), at::kLong);
  for (int64_t b = 0; b < keys.size(0); ++b) {
    std::vector<int64_t> idx(keys.size(1));
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t x, int64_t y) {
      return keys[b][x].item<double>() < keys[b][y].item<double>();
    });
    for (size_t i = 0; i < idx.size(); ++i) out[b][i] = idx[i];
  }
  return out;
}

TEST(PermuteRows, MatchesALoopGatherWithTrailingDimensions) {
  at::manual_seed(0);
  const at::Tensor values = at::randn({3, 5, 2, 3}, kDouble);
  const at::Tensor index = at::stack({at::randperm(5, at::kLong), at::randperm(5, at::kLong),
                                      at::tensor({4, 4, 0, 1, 2}, at::kLong)});  // repeats too
  const at::Tensor out = PermuteRows(values, index);
  ASSERT_EQ(out.sizes(), values.sizes());
  for (int64_t b = 0; b < 3; ++b) {
    for (int64_t i = 0; i < 5; ++i) {
      EXPECT_TRUE(at::equal(out[b][i], values[b][index[b][i].item<int64_t>()])) << b << " " << i;
    }
  }
  // Rows [batch, n] without trailing dimensions.
  const at::Tensor flat = PermuteRows(at::arange(10, kDouble).view({2, 5}), index.slice(0, 0, 2));
  EXPECT_TRUE(at::equal(flat[1], index[1].to(at::kDouble) + 5));
}

TEST(HardSort, IsTheStableSortWithPermutationAndOneLevel) {
  at::manual_seed(1);
  for (int64_t n : {1, 2, 7, 16}) {
    // Few distinct keys: many ties, which must keep their order.
    const at::Tensor keys = at::randint(0, 4, {3, n}, kDouble);
    const at::Tensor values = at::randn({3, n, 2}, kDouble);
    const SortOutput out = HardSort(keys, values);
    const at::Tensor order = ReferenceOrder(keys);
    EXPECT_TRUE(at::equal(out.permutation, order)) << "n = " << n;
    for (int64_t b = 0; b < 3; ++b) {
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_TRUE(at::equal(out.output[b][i], values[b][order[b][i].item<int64_t>()]));
      }
    }
    ASSERT_EQ(out.levels.size(), 1u);
    EXPECT_TRUE(at::equal(out.levels[0], out.output));
    EXPECT_TRUE(out.steps.empty());
  }
  // A known case: keys 2, 1, 2, 1, 0 -> positions 4, 1, 3, 0, 2.
  const at::Tensor keys = at::tensor({2.0f, 1.0f, 2.0f, 1.0f, 0.0f}).view({1, 5});
  const SortOutput out = HardSort(keys, at::arange(5, at::kFloat).view({1, 5}));
  EXPECT_TRUE(out.permutation.equal(at::tensor({4, 1, 3, 0, 2}, at::kLong).view({1, 5})));
  EXPECT_TRUE(out.output.equal(at::tensor({4.0f, 1.0f, 3.0f, 0.0f, 2.0f}).view({1, 5})));
}

TEST(HardSort, GradientReachesTheValuesThroughThePermutation) {
  at::manual_seed(2);
  const at::Tensor keys = at::randn({2, 6}, kDouble);
  const at::Tensor values = at::randn({2, 6, 3}, kDouble);
  auto f = [&](const std::vector<at::Tensor>& in) { return HardSort(keys, in[0]).output; };
  EXPECT_LT(testing::max_gradient_error(f, {values}, /*wrt=*/0), 1e-8);
  // d output[b, i] / d values[b, p[b, i]] = 1: the gradient of the sum of
  // output position 0 is one-hot at the smallest key.
  const at::Tensor v = values.clone().requires_grad_();
  const SortOutput out = HardSort(keys, v);
  out.output.select(1, 0).sum().backward();
  for (int64_t b = 0; b < 2; ++b) {
    const int64_t smallest = keys[b].argmin().item<int64_t>();
    for (int64_t i = 0; i < 6; ++i) {
      EXPECT_EQ(v.grad()[b][i].sum().item<double>(), i == smallest ? 3.0 : 0.0) << b << " " << i;
    }
  }
}

TEST(HardSort, BadInputNamesHardSort) {
  const at::Tensor keys = at::randn({2, 4});
  EXPECT_ERROR_CONTAINS(HardSort(keys.view({8}), at::randn({8, 1})),
                        "HardSort: keys must have 2 dimensions");
  EXPECT_ERROR_CONTAINS(HardSort(keys, at::randn({2, 3})),
                        "HardSort: values must be [batch, n, ...] with batch = 2 and n = 4 (from "
                        "keys), got shape [2, 3]");
  EXPECT_ERROR_CONTAINS(HardSort(keys.to(at::kLong), at::zeros({2, 4}, at::kLong)),
                        "HardSort: keys must have dtype float or double");
  at::Tensor nan = keys.clone();
  nan[1][2] = NAN;
  EXPECT_ERROR_CONTAINS(HardSort(nan, at::randn({2, 4})), "HardSort: keys contain NaN or infinity");
  EXPECT_ERROR_CONTAINS(HardSort(keys, at::randn({2, 4}, kDouble)),
                        "HardSort: keys and values must have the same dtype");
  EXPECT_ERROR_CONTAINS(CheckSortArgs("MySort", at::randn({3, 0}), at::randn({3, 0})),
                        "MySort: keys must hold n >= 1 keys per row, got shape [3, 0]");
}

// Two levels at the padded length 4 (n = 3) with a hand-built second
// level: candidates identity and "swap within pairs" (i <-> i ^ 1) with
// weights 0.75 and 0.25, so t_0[i] = 0.75 t_1[i] + 0.25 t_1[i ^ 1].
SortOutput TwoLevelOutput(const at::Tensor& x0, const at::Tensor& x1) {
  at::Tensor rows = at::empty({1, 4, 2}, at::kLong);
  for (int64_t i = 0; i < 4; ++i) {
    rows[0][i][0] = i;
    rows[0][i][1] = i ^ 1;
  }
  const at::Tensor weights = at::tensor({0.75, 0.25}, kDouble).repeat({1, 4, 1});
  // Level 0's half-permutation is never used by the targets: any will do.
  const at::Tensor id_rows = at::arange(4, at::kLong).view({1, 4, 1});
  SortOutput out;
  out.output = x1.slice(1, 0, 3);
  out.levels = {x0, x1};
  out.steps = {{id_rows, at::ones({1, 4, 1}, kDouble)}, {rows, weights}};
  return out;
}

TEST(IntermediateTargets, FeedTheTargetBackThroughEachLevelsTranspose) {
  const at::Tensor target = at::tensor({0.2, 0.6, 1.0}, kDouble).view({1, 3, 1}).requires_grad_();
  const SortOutput out = TwoLevelOutput(at::zeros({1, 4, 1}, kDouble), at::zeros({1, 4, 1}, kDouble));
  const std::vector<at::Tensor> t = IntermediateTargets(out, target);
  ASSERT_EQ(t.size(), 2u);
  // t_1: the target padded with a zero; t_0 by hand.
  const std::vector<double> t1 = {0.2, 0.6, 1.0, 0.0};
  const std::vector<double> t0 = {0.3, 0.5, 0.75, 0.25};
  for (int64_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(t[1][0][i][0].item<double>(), t1[i], 1e-15) << i;
    EXPECT_NEAR(t[0][0][i][0].item<double>(), t0[i], 1e-15) << i;
  }
  // Constants of the loss: no gradient flows back to the target.
  EXPECT_FALSE(t[0].requires_grad());
  EXPECT_FALSE(t[1].requires_grad());
  SortOutput bad = out;
  bad.steps.pop_back();
  EXPECT_ERROR_CONTAINS(IntermediateTargets(bad, target),
                        "IntermediateTargets: needs one half-permutation per level, got 1 steps and "
                        "2 levels");
  EXPECT_ERROR_CONTAINS(IntermediateTargets(SortOutput{}, target), "IntermediateTargets: no levels");
}

TEST(SortLoss, KnownValuesOfEveryKind) {
  const at::Tensor x = at::tensor({0.25, 0.5, 0.9}, kDouble).view({1, 3, 1});
  const at::Tensor target = at::tensor({0.0, 1.0, 1.0}, kDouble).view({1, 3, 1});
  const SortOutput final_only{x, {x}, {}, {}};
  SortLossOptions mse;
  mse.kind = SortLossOptions::Kind::kMse;
  EXPECT_NEAR(SortLoss(final_only, target, mse).item<double>(),
              (0.0625 + 0.25 + 0.01) / 3, 1e-15);
  EXPECT_NEAR(SortLoss(final_only, target).item<double>(),
              -(std::log(0.75) + std::log(0.5) + std::log(0.9)) / 3, 1e-14);
  // Outputs of exactly 0 and 1 are clamped to [eps, 1 - eps]: finite.
  SortLossOptions bce;
  bce.eps = 1e-3;
  const at::Tensor hard = at::tensor({1.0, 0.0}, kDouble).view({1, 2});
  const SortOutput wrong{hard, {hard}, {}, {}};
  EXPECT_NEAR(SortLoss(wrong, at::tensor({0.0, 1.0}, kDouble).view({1, 2}), bce).item<double>(),
              -std::log(1e-3), 1e-12);
  // intermediate without steps (other methods): the final loss only.
  SortLossOptions inter = mse;
  inter.intermediate = true;
  EXPECT_NEAR(SortLoss(final_only, target, inter).item<double>(),
              SortLoss(final_only, target, mse).item<double>(), 0);
}

TEST(SortLoss, IntermediateSumsEveryLevelsLossAgainstItsTarget) {
  at::manual_seed(3);
  const at::Tensor x0 = at::rand({1, 4, 1}, kDouble), x1 = at::rand({1, 4, 1}, kDouble);
  const at::Tensor target = at::tensor({0.2, 0.6, 1.0}, kDouble).view({1, 3, 1});
  const SortOutput out = TwoLevelOutput(x0, x1);
  const std::vector<double> t0 = {0.3, 0.5, 0.75, 0.25}, t1 = {0.2, 0.6, 1.0, 0.0};
  double mse = 0, bce = 0;
  for (int64_t i = 0; i < 4; ++i) {
    const double a = x0[0][i][0].item<double>(), b = x1[0][i][0].item<double>();
    mse += ((a - t0[i]) * (a - t0[i]) + (b - t1[i]) * (b - t1[i])) / 4;
    bce -= (t0[i] * std::log(a) + (1 - t0[i]) * std::log(1 - a) + t1[i] * std::log(b) +
            (1 - t1[i]) * std::log(1 - b)) / 4;
  }
  SortLossOptions options;
  options.intermediate = true;
  EXPECT_NEAR(SortLoss(out, target, options).item<double>(), bce, 1e-12);
  options.kind = SortLossOptions::Kind::kMse;
  EXPECT_NEAR(SortLoss(out, target, options).item<double>(), mse, 1e-14);
  // Without intermediate: the final output (n = 3, unpadded) only.
  options.intermediate = false;
  double final_mse = 0;
  for (int64_t i = 0; i < 3; ++i) final_mse += std::pow(x1[0][i][0].item<double>() - t1[i], 2) / 3;
  EXPECT_NEAR(SortLoss(out, target, options).item<double>(), final_mse, 1e-14);
}

TEST(SortLoss, GradientsMatchFiniteDifferences) {
  at::manual_seed(4);
  // Outputs inside (eps, 1 - eps): the clamp is the identity there.
  const at::Tensor x0 = at::rand({1, 4, 1}, kDouble) * 0.8 + 0.1;
  const at::Tensor x1 = at::rand({1, 4, 1}, kDouble) * 0.8 + 0.1;
  const at::Tensor target = at::rand({1, 3, 1}, kDouble);
  for (auto kind : {SortLossOptions::Kind::kBce, SortLossOptions::Kind::kMse}) {
    for (bool intermediate : {false, true}) {
      SortLossOptions options;
      options.kind = kind;
      options.intermediate = intermediate;
      auto f = [&](const std::vector<at::Tensor>& in) {
        return SortLoss(TwoLevelOutput(in[0], in[1]), target, options);
      };
      // Final only: x0 is not an input of the loss (no gradient to check).
      for (size_t wrt = intermediate ? 0 : 1; wrt < 2; ++wrt) {
        EXPECT_LT(testing::max_gradient_error(f, {x0, x1}, wrt), 1e-8)
            << "mse " << (kind == SortLossOptions::Kind::kMse) << " intermediate "
            << intermediate << " input " << wrt;
      }
    }
  }
}

TEST(SortLoss, BadInputIsAClearError) {
  const at::Tensor x = at::full({1, 3, 1}, 0.5, kDouble);
  const SortOutput out{x, {x}, {}, {}};
  EXPECT_ERROR_CONTAINS(SortLoss(SortOutput{}, x), "SortLoss: the sort output is empty");
  EXPECT_ERROR_CONTAINS(SortLoss(out, x.view({1, 3})),
                        "SortLoss: target must have the shape of the output [1, 3, 1], got [1, 3]");
  for (double eps : {0.0, 0.5}) {
    SortLossOptions options;
    options.eps = eps;
    EXPECT_ERROR_CONTAINS(SortLoss(out, x, options), "SortLoss: eps must be in (0, 0.5), got");
  }
}

// Metrics by loops: a position is right when the value it shows equals the
// sorted value there; Spearman's d is the position's distance to the
// nearest of the shown value's tied ranks [#less, #less-or-equal - 1].
SortMetrics ReferenceMetrics(const at::Tensor& values, const at::Tensor& predicted) {
  const int64_t batch = values.size(0), n = values.size(1);
  SortMetrics m;
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<double> v(n), sorted;
    for (int64_t i = 0; i < n; ++i) v[i] = values[b][i].item<double>();
    sorted = v;
    std::sort(sorted.begin(), sorted.end());
    int64_t right = 0;
    double d2 = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double shown = v[predicted[b][i].item<int64_t>()];
      right += shown == sorted[i];
      int64_t less = 0, less_equal = 0;
      for (double u : v) {
        less += u < shown;
        less_equal += u <= shown;
      }
      const int64_t rank = std::clamp<int64_t>(i, less, less_equal - 1);
      d2 += double(i - rank) * double(i - rank);
    }
    m.exact += (right == n) / double(batch);
    m.elementwise += right / double(n * batch);
    m.spearman += (n == 1 ? 1.0 : 1 - 6 * d2 / double(n * (n * n - 1))) / batch;
  }
  return m;
}

TEST(ComputeSortMetrics, MatchLoopReferenceOnRandomPredictions) {
  at::manual_seed(5);
  for (int64_t n : {2, 5, 9}) {
    for (bool ties : {false, true}) {
      const at::Tensor values = ties ? at::randint(0, 3, {20, n}, at::kLong)
                                     : at::argsort(at::rand({20, n}), int64_t{1}) * 10;
      // Half the rows sorted right, half random permutations.
      at::Tensor predicted = at::argsort(at::rand({20, n}), int64_t{1});
      predicted.slice(0, 0, 10).copy_(ReferenceOrder(values.to(at::kDouble)).slice(0, 0, 10));
      const SortMetrics m = ComputeSortMetrics(values, predicted);
      const SortMetrics e = ReferenceMetrics(values, predicted);
      EXPECT_NEAR(m.exact, e.exact, 1e-12) << n << " " << ties;
      EXPECT_NEAR(m.elementwise, e.elementwise, 1e-12) << n << " " << ties;
      EXPECT_NEAR(m.spearman, e.spearman, 1e-12) << n << " " << ties;
      EXPECT_GE(m.exact, 0.5);  // the sorted half
      EXPECT_LT(m.spearman, 1.0 + 1e-12);
    }
  }
}

TEST(ComputeSortMetrics, KnownCases) {
  // Reversal of 5 distinct values: only the middle is right, rho = -1.
  const at::Tensor values = at::tensor({0.5, -1.0, 3.0, 2.0, 7.0}, kDouble).view({1, 5});
  SortMetrics m = ComputeSortMetrics(values, at::tensor({4, 2, 3, 0, 1}, at::kLong).view({1, 5}));
  EXPECT_DOUBLE_EQ(m.exact, 0.0);
  EXPECT_DOUBLE_EQ(m.elementwise, 0.2);
  EXPECT_DOUBLE_EQ(m.spearman, -1.0);
  // One adjacent swap of 5 values: d^2 = 1 + 1, rho = 1 - 12 / 120 = 0.9.
  m = ComputeSortMetrics(values, at::tensor({0, 1, 3, 2, 4}, at::kLong).view({1, 5}));
  EXPECT_DOUBLE_EQ(m.elementwise, 0.6);
  EXPECT_DOUBLE_EQ(m.spearman, 0.9);
  // All values equal: every order is right.
  m = ComputeSortMetrics(at::full({2, 4}, 3.0), at::tensor({3, 1, 2, 0, 0, 1, 2, 3}, at::kLong).view({2, 4}));
  EXPECT_DOUBLE_EQ(m.exact, 1.0);
  EXPECT_DOUBLE_EQ(m.elementwise, 1.0);
  EXPECT_DOUBLE_EQ(m.spearman, 1.0);
  // n = 1: rho is 1 (the formula's 0/0); an empty batch gives zeros.
  EXPECT_DOUBLE_EQ(ComputeSortMetrics(at::ones({3, 1}), at::zeros({3, 1}, at::kLong)).spearman, 1.0);
  const SortMetrics empty = ComputeSortMetrics(at::ones({0, 4}), at::zeros({0, 4}, at::kLong));
  EXPECT_EQ(empty.exact, 0.0);
  EXPECT_EQ(empty.elementwise, 0.0);
  EXPECT_EQ(empty.spearman, 0.0);
}

TEST(ComputeSortMetrics, BadInputNamesTheArgument) {
  const at::Tensor values = at::rand({2, 3});
  EXPECT_ERROR_CONTAINS(ComputeSortMetrics(values, at::zeros({2, 3}, at::kInt)),
                        "ComputeSortMetrics: predicted must have dtype int64 (Long)");
  EXPECT_ERROR_CONTAINS(ComputeSortMetrics(values, at::zeros({2, 4}, at::kLong)),
                        "ComputeSortMetrics: true_values and predicted must have the same shape, "
                        "got [2, 3] and [2, 4]");
  EXPECT_ERROR_CONTAINS(ComputeSortMetrics(values.view({6}), at::zeros({6}, at::kLong)),
                        "ComputeSortMetrics: true_values must have 2 dimensions, got shape [6]");
}

}  // namespace
}  // namespace sparse_hyper
}  // namespace indexgrad
