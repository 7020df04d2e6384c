// Tests of NeuralSort and SoftSort: their matrices against the papers'
// formulas written as loops, rows sum to one, hard forms are the sorting
// permutation, low temperature sorts, module interface, bad input.
#include "baselines/relaxed_sort.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/testing/expect_error.h"

namespace indexgrad {
namespace baselines {
namespace {

const auto kDouble = at::TensorOptions().dtype(at::kDouble);

// NeuralSort eq. 5 by loops, scores s = -keys (ascending keys), i = 1..n.
at::Tensor NeuralSortLoops(const at::Tensor& keys, double tau) {
  const int64_t batch = keys.size(0), n = keys.size(1);
  at::Tensor p = at::zeros({batch, n, n}, kDouble);
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<double> s(n);
    for (int64_t j = 0; j < n; ++j) s[j] = -keys[b][j].item<double>();
    for (int64_t i = 1; i <= n; ++i) {
      std::vector<double> logit(n);
      double top = -INFINITY, total = 0;
      for (int64_t j = 0; j < n; ++j) {
        double a = 0;
        for (int64_t k = 0; k < n; ++k) a += std::fabs(s[j] - s[k]);
        logit[j] = ((n + 1 - 2 * i) * s[j] - a) / tau;
        top = std::max(top, logit[j]);
      }
      for (int64_t j = 0; j < n; ++j) total += std::exp(logit[j] - top);
      for (int64_t j = 0; j < n; ++j) p[b][i - 1][j] = std::exp(logit[j] - top) / total;
    }
  }
  return p;
}

// SoftSort eq. 3 by loops.
at::Tensor SoftSortLoops(const at::Tensor& keys, double tau) {
  const int64_t batch = keys.size(0), n = keys.size(1);
  at::Tensor p = at::zeros({batch, n, n}, kDouble);
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<double> k(n);
    for (int64_t j = 0; j < n; ++j) k[j] = keys[b][j].item<double>();
    std::vector<double> sorted = k;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t i = 0; i < n; ++i) {
      double total = 0;
      for (int64_t j = 0; j < n; ++j) total += std::exp(-std::fabs(sorted[i] - k[j]) / tau);
      for (int64_t j = 0; j < n; ++j) p[b][i][j] = std::exp(-std::fabs(sorted[i] - k[j]) / tau) / total;
    }
  }
  return p;
}

TEST(RelaxedSort, MatricesMatchTheFormulas) {
  at::manual_seed(0);
  const at::Tensor keys = at::randn({3, 6}, kDouble);
  for (double tau : {0.3, 1.0, 4.0}) {
    EXPECT_TRUE(at::allclose(NeuralSortMatrix(keys, tau), NeuralSortLoops(keys, tau), 1e-12, 1e-14));
    EXPECT_TRUE(at::allclose(SoftSortMatrix(keys, tau), SoftSortLoops(keys, tau), 1e-12, 1e-14));
  }
}

TEST(RelaxedSort, HardFormsAreTheSortingPermutation) {
  at::manual_seed(1);
  const at::Tensor keys = at::randn({5, 7}, kDouble);
  const at::Tensor order = std::get<1>(keys.sort(1));
  const at::Tensor expect = at::zeros({5, 7, 7}, kDouble).scatter_(2, order.unsqueeze(2), 1.0);
  for (const at::Tensor& p : {NeuralSortMatrix(keys, 1.0), SoftSortMatrix(keys, 1.0)}) {
    EXPECT_TRUE(at::allclose(p.sum(2), at::ones({5, 7}, kDouble)));
    const at::Tensor hard = HardRows(p);
    EXPECT_TRUE(at::equal(hard, expect));
    // A permutation matrix: columns sum to one too.
    EXPECT_TRUE(at::equal(hard.sum(1), at::ones({5, 7}, kDouble)));
  }
}

TEST(RelaxedSort, ModulesSortAtLowTemperatureAndExactlyInEvaluation) {
  const at::Tensor keys = at::tensor({3.0, -1.0, 2.0, 0.5}, kDouble).view({1, 4});
  const at::Tensor values = at::tensor({30.0, -10.0, 20.0, 5.0}, kDouble).view({1, 4, 1});
  const at::Tensor sorted = at::tensor({-10.0, 5.0, 20.0, 30.0}, kDouble).view({1, 4, 1});
  NeuralSort neural(0.01);
  SoftSort soft(0.01);
  for (sparse_hyper::SortModuleImpl* m :
       std::vector<sparse_hyper::SortModuleImpl*>{neural.get(), soft.get()}) {
    EXPECT_TRUE(at::allclose(m->forward(keys, values).output, sorted, 0, 1e-9)) << m->name();
    m->eval();
    const auto out = m->forward(keys, values);
    EXPECT_TRUE(at::equal(out.output, sorted));
    EXPECT_TRUE(at::equal(out.permutation, at::tensor({1, 3, 2, 0}, at::kLong).view({1, 4})));
  }
}

TEST(RelaxedSort, BadInputIsAClearError) {
  EXPECT_ERROR_CONTAINS(NeuralSort(0.0), "tau (temperature) must be a positive finite number, got 0");
  SoftSort soft(1.0);
  EXPECT_ERROR_CONTAINS(soft->forward(at::randn({2, 3}), at::randn({2, 4, 1})),
                        "values must be [batch, n, ...] with batch = 2 and n = 3");
  EXPECT_ERROR_CONTAINS(soft->forward(at::full({1, 2}, NAN), at::randn({1, 2, 1})),
                        "keys contain NaN or infinity");
}

}  // namespace
}  // namespace baselines
}  // namespace indexgrad
