// Tests of half_permutation and half_permutation_apply: proportions, rows and
// duplicates against an independent long-double loop implementation of the
// paper's definitions, the n = 2 case in closed form, uniform balanced
// samples, far-apart keys sort exactly, sparse_contract agrees with apply,
// finite-difference gradients in double, bad input.
#include "kernels/half_permutation/half_permutation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "kernels/sparse_contract/sparse_contract.h"
#include "kernels/testing/expect_error.h"
#include "kernels/testing/gradcheck.h"

namespace indexgrad {
namespace {

const auto kDouble = at::TensorOptions().dtype(at::kDouble);

// The paper's definitions, by loops in long double, given the candidate
// vectors (recovered from the op's rows): median of the bucket (mean of the
// two middle keys), p(o) = prod o'^o (1 - o')^(1 - o) as a product, a
// candidate equal to an earlier one gets 0, normalised per bucket; rows by
// placing 0s then 1s in order. Returns expected weights; checks rows.
at::Tensor reference_weights(const at::Tensor& keys, const at::Tensor& rows,
                             int64_t depth, double c) {
  const int64_t batch = keys.size(0), n = keys.size(1), S = rows.size(2);
  const int64_t s = n >> depth, half = s / 2;
  at::Tensor w = at::zeros({batch, n, S}, kDouble);
  auto K = keys.accessor<double, 2>();
  auto R = rows.accessor<int64_t, 3>();
  auto W = w.accessor<double, 3>();
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t start = 0; start < n; start += s) {
      std::vector<double> sorted;
      for (int64_t i = 0; i < s; ++i) sorted.push_back(K[b][start + i]);
      std::sort(sorted.begin(), sorted.end());
      const long double m = (static_cast<long double>(sorted[half - 1]) + sorted[half]) / 2;
      std::vector<std::vector<int>> seen;
      std::vector<long double> p(S, 0);
      long double total = 0;
      for (int64_t k = 0; k < S; ++k) {
        std::vector<int> o(s);
        for (int64_t i = 0; i < s; ++i) o[i] = R[b][start + i][k] >= start + half;
        // Rows: a stable partition.
        int64_t lower = 0, upper = 0;
        for (int64_t i = 0; i < s; ++i) {
          const int64_t expect = start + (o[i] ? half + upper++ : lower++);
          EXPECT_EQ(R[b][start + i][k], expect) << "b=" << b << " i=" << start + i << " k=" << k;
        }
        EXPECT_EQ(upper, half) << "candidate " << k << " is not balanced";
        if (std::find(seen.begin(), seen.end(), o) != seen.end()) continue;
        seen.push_back(o);
        long double prod = 1;
        for (int64_t i = 0; i < s; ++i) {
          const long double op = 1 / (1 + std::exp(-static_cast<long double>(c) * (K[b][start + i] - m)));
          prod *= o[i] ? op : 1 - op;
        }
        p[k] = prod;
        total += prod;
      }
      for (int64_t k = 0; k < S; ++k)
        for (int64_t i = 0; i < s; ++i) W[b][start + i][k] = static_cast<double>(p[k] / total);
    }
  }
  return w;
}

TEST(HalfPermutation, MatchesLoopReference) {
  at::manual_seed(0);
  const at::Tensor keys = at::randn({3, 16}, kDouble) * 0.3;
  for (int64_t depth : {0, 1, 2, 3}) {
    auto [rows, weights] = half_permutation(keys, depth, /*num_samples=*/6, 2.0, 7);
    ASSERT_EQ(rows.sizes(), (std::vector<int64_t>{3, 16, 7}));
    EXPECT_TRUE(at::allclose(weights, reference_weights(keys, rows, depth, 2.0), 1e-12, 1e-15))
        << "depth " << depth;
    // Every column sums to one.
    EXPECT_TRUE(at::allclose(weights.sum(2), at::ones({3, 16}, kDouble), 1e-12, 0));
  }
}

TEST(HalfPermutation, FirstCandidateIsRoundedSigmoid) {
  at::manual_seed(1);
  const at::Tensor keys = at::randn({4, 8}, kDouble);  // distinct keys
  auto [rows, weights] = half_permutation(keys, 0, 3, 10.0, 1);
  const at::Tensor median = std::get<0>(keys.sort(1)).narrow(1, 3, 2).mean(1, true);
  const at::Tensor rounded = at::sigmoid((keys - median) * 10.0).round();
  const at::Tensor o0 = (rows.select(2, 0) >= 4).to(at::kDouble);
  EXPECT_TRUE(at::equal(o0, rounded));
}

TEST(HalfPermutation, TiesStayBalancedAndStable) {
  const at::Tensor keys = at::tensor({1.0, 1.0, 1.0, 1.0, 0.0, 2.0}, kDouble).view({1, 6});
  auto [rows, weights] = half_permutation(keys, 0, 0, 10.0, 1);
  // Stable ranks: 0.0 < 1.0 (cols 0..3) < 2.0; the lower half is col 4 and
  // the first two ones (cols 0, 1), in their order.
  const std::vector<int64_t> expect = {0, 1, 3, 4, 2, 5};
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(rows[0][i][0].item<int64_t>(), expect[i]) << i;
  EXPECT_DOUBLE_EQ(weights[0][0][0].item<double>(), 1.0);
}

TEST(HalfPermutation, TwoKeysInClosedForm) {
  // s = 2: only (0,1) and (1,0) exist, so 9 samples hold duplicates.
  const at::Tensor keys = at::tensor({0.3, 0.1}, kDouble).view({1, 2});
  auto [rows, weights] = half_permutation(keys, 0, 9, 10.0, 3);
  const double z = 10.0 * (0.3 - 0.2);  // key 0 is above the median by 0.1
  const double sig = 1 / (1 + std::exp(-z));
  const double keep = sig * sig / (sig * sig + (1 - sig) * (1 - sig));  // o = (1, 0)
  double swapped = 0, identity = 0;
  int nonzero = 0;
  for (int64_t k = 0; k < 10; ++k) {
    const double w = weights[0][0][k].item<double>();
    nonzero += w > 0;
    (rows[0][0][k].item<int64_t>() == 1 ? swapped : identity) += w;
  }
  EXPECT_LE(nonzero, 2);
  EXPECT_NEAR(swapped, keep, 1e-14);
  EXPECT_NEAR(identity, 1 - keep, 1e-14);
}

TEST(HalfPermutation, RandomCandidatesAreUniformBalancedVectors) {
  // s = 4: six balanced vectors, each drawn with probability 1/6.
  const at::Tensor keys = at::zeros({2000, 4}, kDouble);
  auto [rows, weights] = half_permutation(keys, 0, 6, 10.0, 11);
  std::map<int64_t, int64_t> count;
  auto R = rows.accessor<int64_t, 3>();
  for (int64_t b = 0; b < 2000; ++b)
    for (int64_t k = 1; k < 7; ++k) {
      int64_t code = 0;
      for (int64_t i = 0; i < 4; ++i) code = code * 2 + (R[b][i][k] >= 2);
      ++count[code];
    }
  ASSERT_EQ(count.size(), 6u);
  for (const auto& [code, c] : count) EXPECT_NEAR(c / 12000.0, 1.0 / 6, 0.015) << code;
}

TEST(HalfPermutation, SeededAndReproducible) {
  const at::Tensor keys = at::randn({2, 32}, kDouble);
  auto [r1, w1] = half_permutation(keys, 1, 4, 10.0, 5);
  auto [r2, w2] = half_permutation(keys, 1, 4, 10.0, 5);
  auto [r3, w3] = half_permutation(keys, 1, 4, 10.0, 6);
  EXPECT_TRUE(at::equal(r1, r2));
  EXPECT_TRUE(at::equal(w1, w2));
  EXPECT_FALSE(at::equal(r1, r3));
}

// A full hard quicksort: log2 n levels with far-apart keys sort exactly.
TEST(HalfPermutation, FarApartKeysSortExactlyWithoutNaN) {
  at::manual_seed(2);
  for (auto dtype : {at::kFloat, at::kDouble}) {
    const at::Tensor keys = at::randperm(64, at::kLong).to(dtype).view({1, 64}) * 1e6;
    at::Tensor x = keys.view({1, 64, 1});
    for (int64_t depth = 0; depth < 6; ++depth) {
      auto [rows, weights] = half_permutation(x.view({1, 64}), depth, 4, 10.0, depth);
      EXPECT_FALSE(at::isnan(weights).any().item<bool>());
      x = half_permutation_apply(rows, weights, x, false);
    }
    EXPECT_TRUE(at::equal(x.view({1, 64}), std::get<0>(keys.sort(1))));
  }
}

TEST(HalfPermutationApply, MatchesDenseMatrixAndSparseContract) {
  at::manual_seed(3);
  const at::Tensor keys = at::randn({2, 8}, kDouble) * 0.2;
  auto [rows, weights] = half_permutation(keys, 1, 3, 10.0, 2);
  // Dense P[b, row, col] by loops.
  at::Tensor P = at::zeros({2, 8, 8}, kDouble);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 8; ++i)
      for (int64_t k = 0; k < 4; ++k)
        P[b][rows[b][i][k].item<int64_t>()][i] += weights[b][i][k];
  const at::Tensor v = at::randn({2, 8, 3, 2}, kDouble);
  const at::Tensor flat = v.view({2, 8, 6});
  EXPECT_TRUE(at::allclose(half_permutation_apply(rows, weights, v, false).view({2, 8, 6}),
                           at::bmm(P, flat)));
  EXPECT_TRUE(at::allclose(half_permutation_apply(rows, weights, v, true).view({2, 8, 6}),
                           at::bmm(P.transpose(1, 2), flat)));
  // The same nonzeros through sparse_contract: tuples (row, column).
  const at::Tensor cols = at::arange(8, at::kLong).view({1, 8, 1}).expand({2, 8, 4});
  const at::Tensor indices = at::stack({rows, cols}, 3).reshape({2, 32, 2});
  const at::Tensor y = sparse_contract(indices, weights.reshape({2, 32}), {8}, v.select(3, 0).select(2, 0));
  EXPECT_TRUE(at::allclose(y, at::bmm(P, flat.select(2, 0).unsqueeze(2)).squeeze(2)));
}

TEST(HalfPermutation, GradientOfKeysMatchesFiniteDifferences) {
  at::manual_seed(4);
  // Keys well apart (finite differences must not cross a rank), close enough
  // that the proportions are not saturated.
  const at::Tensor keys = (at::randperm(16, at::kLong).to(at::kDouble) * 0.1).view({1, 16}) +
                          at::rand({1, 16}, kDouble) * 0.02;
  const at::Tensor values = at::randn({1, 16, 3}, kDouble);
  for (int64_t depth : {0, 1, 2}) {
    auto f = [&](const std::vector<at::Tensor>& in) {
      auto [rows, weights] = half_permutation(in[0], depth, 5, 3.0, 9);
      return half_permutation_apply(rows, weights, values, false);
    };
    EXPECT_LT(testing::max_gradient_error(f, {keys.clone()}, 0), 1e-7) << "depth " << depth;
  }
}

TEST(HalfPermutationApply, GradientsMatchFiniteDifferences) {
  at::manual_seed(5);
  auto [rows, w] = half_permutation(at::randn({2, 8}, kDouble), 0, 3, 10.0, 4);
  const at::Tensor weights = at::rand({2, 8, 4}, kDouble);  // any weights
  const at::Tensor values = at::randn({2, 8, 5}, kDouble);
  for (bool transpose : {false, true}) {
    auto f = [&](const std::vector<at::Tensor>& in) {
      return half_permutation_apply(rows, in[0], in[1], transpose);
    };
    EXPECT_LT(testing::max_gradient_error(f, {weights.clone(), values.clone()}, 0), 1e-7);
    EXPECT_LT(testing::max_gradient_error(f, {weights.clone(), values.clone()}, 1), 1e-7);
  }
}

// quicksort_levels runs the same levels as composing half_permutation and
// half_permutation_apply by hand, keys travelling with the values.
TEST(QuicksortLevels, MatchesTheLevelByLevelComposition) {
  at::manual_seed(6);
  const at::Tensor keys = at::randn({3, 16}, kDouble).requires_grad_();
  const at::Tensor values = at::randn({3, 16, 2}, kDouble).requires_grad_();
  auto [levels, rows, weights] = quicksort_levels(keys, values, 3, 4.0, 100);
  ASSERT_EQ(levels.size(), 4u);
  ASSERT_EQ(levels[0].sizes(), (std::vector<int64_t>{3, 16, 3}));
  const at::Tensor probe = at::randn({4, 3, 16, 3}, kDouble);
  (at::stack(levels) * probe).sum().backward();
  const at::Tensor gk = keys.grad().clone(), gv = values.grad().clone();
  keys.mutable_grad() = at::Tensor();
  values.mutable_grad() = at::Tensor();
  at::Tensor kx = at::cat({keys.unsqueeze(2), values}, 2);
  at::Tensor loss = at::zeros({}, kDouble);
  for (int64_t d = 0; d < 4; ++d) {
    auto [r, w] = half_permutation(kx.select(2, 0), d, 3, 4.0, 100 + d);
    EXPECT_TRUE(at::equal(r, rows[d])) << d;
    EXPECT_TRUE(at::allclose(w, weights[d], 0, 1e-15)) << d;
    kx = half_permutation_apply(r, w, kx, false);
    EXPECT_TRUE(at::allclose(kx, levels[d], 0, 1e-14)) << d;
    loss = loss + (kx * probe[d]).sum();
  }
  loss.backward();
  EXPECT_TRUE(at::allclose(keys.grad(), gk, 1e-10, 1e-12));
  EXPECT_TRUE(at::allclose(values.grad(), gv, 1e-10, 1e-12));
}

TEST(QuicksortLevels, GradientMatchesFiniteDifferences) {
  at::manual_seed(7);
  const at::Tensor keys = at::randperm(8, at::kLong).to(at::kDouble).view({1, 8}) * 0.1 +
                          at::rand({1, 8}, kDouble) * 0.01;
  const at::Tensor values = at::randn({1, 8, 2}, kDouble);
  auto f = [](const std::vector<at::Tensor>& in) {
    return at::stack(std::get<0>(quicksort_levels(in[0], in[1], 4, 3.0, 1)));
  };
  EXPECT_LT(testing::max_gradient_error(f, {keys.clone(), values.clone()}, 0), 1e-7);
  EXPECT_LT(testing::max_gradient_error(f, {keys.clone(), values.clone()}, 1), 1e-7);
}

TEST(QuicksortLevels, BadInputIsAClearError) {
  EXPECT_ERROR_CONTAINS(quicksort_levels(at::randn({2, 6}), at::randn({2, 6, 1}), 2, 10.0, 0),
                        "keys must hold a power of two n >= 2 per row, got n = 6");
  EXPECT_ERROR_CONTAINS(quicksort_levels(at::randn({2, 8}), at::randn({2, 8}), 2, 10.0, 0),
                        "values must be [batch, n, f] with batch = 2 and n = 8");
  at::Tensor keys = at::randn({2, 8});
  keys[1][2] = NAN;
  EXPECT_ERROR_CONTAINS(quicksort_levels(keys, at::randn({2, 8, 1}), 2, 10.0, 0),
                        "quicksort_levels: keys contain NaN or infinity");
}

TEST(HalfPermutation, BadInputIsAClearError) {
  const at::Tensor keys = at::randn({2, 8});
  EXPECT_ERROR_CONTAINS(half_permutation(keys.view({16}), 0, 2, 10.0, 0),
                        "keys must have 2 dimensions, got shape [16]");
  EXPECT_ERROR_CONTAINS(half_permutation(at::randn({2, 6}), 1, 2, 10.0, 0),
                        "n = 6 columns; level depth = 1 needs n >= 2 and divisible by 2^(depth+1) = 4");
  EXPECT_ERROR_CONTAINS(half_permutation(at::randn({2, 0}), 0, 2, 10.0, 0), "n = 0 columns");
  EXPECT_ERROR_CONTAINS(half_permutation(keys, 0, -1, 10.0, 0), "num_samples must be >= 0, got -1");
  EXPECT_ERROR_CONTAINS(half_permutation(keys, 0, 2, 0.0, 0), "temperature must be a positive");
  EXPECT_ERROR_CONTAINS(half_permutation(keys, -1, 2, 10.0, 0), "depth must be in [0, 62), got -1");
  at::Tensor nan_keys = keys.clone();
  nan_keys[1][3] = std::nan("");
  EXPECT_ERROR_CONTAINS(half_permutation(nan_keys, 0, 2, 10.0, 0), "keys contain NaN or infinity");
  EXPECT_ERROR_CONTAINS(half_permutation(keys.to(at::kLong), 0, 2, 10.0, 0),
                        "keys must have dtype float or double, got Long");
  auto [rows, weights] = half_permutation(keys, 0, 2, 10.0, 0);
  EXPECT_ERROR_CONTAINS(half_permutation_apply(rows, weights, at::randn({3, 8, 2}), false),
                        "values must be [batch, n, ...] with batch = 2 and n = 8");
  EXPECT_ERROR_CONTAINS(half_permutation_apply(rows, weights, at::randn({2, 8}, kDouble), false),
                        "weights and values must have the same dtype");
  EXPECT_ERROR_CONTAINS(half_permutation_apply(rows + 8, weights, at::randn({2, 8}), false),
                        "rows must lie in [0, n = 8), got values from 8 to 15");
  EXPECT_ERROR_CONTAINS(half_permutation_apply(rows - 1, weights, at::randn({2, 8, 3}), true),
                        "rows must lie in [0, n = 8), got values from -1");
  // Level-0 rows given to the backward of level 1 (buckets of 4).
  EXPECT_ERROR_CONTAINS(detail::_half_permutation_backward(at::ones_like(weights), keys, rows,
                                                           weights, 1, 10.0),
                        "rows must stay in their column's bucket of 4");
}

}  // namespace
}  // namespace indexgrad
