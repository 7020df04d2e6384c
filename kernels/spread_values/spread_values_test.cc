// Tests of spread_values against an independent loop implementation of the
// paper's formula (Algorithm 1: densities, duplicates zeroed, normalised per
// tuple over its chunk), sparse vs dense, finite-difference gradients in
// double, rank-6 tuples with large sizes, tiny sigma, bad input.
#include "kernels/spread_values/spread_values.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "kernels/sample_tuples/sample_tuples.h"
#include "kernels/testing/expect_error.h"
#include "kernels/testing/gradcheck.h"

namespace indexgrad {
namespace {

const auto kDouble = at::TensorOptions().dtype(at::kDouble);

// The paper's formula with plain loops, long double, no log-space tricks.
at::Tensor reference(const at::Tensor& points, const at::Tensor& means,
                     const at::Tensor& sigmas, const at::Tensor& values,
                     int64_t chunk) {
  const int64_t batch = points.size(0), k = points.size(1), s = points.size(2),
                r = points.size(3);
  at::Tensor out = at::zeros({batch, k, s}, kDouble);
  auto P = points.accessor<int64_t, 4>();
  auto M = means.accessor<double, 3>();
  auto S = sigmas.accessor<double, 3>();
  auto V = values.accessor<double, 2>();
  auto O = out.accessor<double, 3>();
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t g = 0; g < k / chunk; ++g) {
      // Distinct points of the chunk: the first occurrence of each tuple.
      std::map<std::vector<int64_t>, std::pair<int64_t, int64_t>> first;
      for (int64_t i = g * chunk; i < (g + 1) * chunk; ++i) {
        for (int64_t j = 0; j < s; ++j) {
          std::vector<int64_t> t;
          for (int64_t d = 0; d < r; ++d) t.push_back(P[b][i][j][d]);
          first.emplace(t, std::make_pair(i, j));
        }
      }
      for (int64_t i = g * chunk; i < (g + 1) * chunk; ++i) {
        long double total = 0;
        std::vector<long double> p;
        for (const auto& [t, where] : first) {
          long double m = 0;
          for (int64_t d = 0; d < r; ++d) {
            const long double diff = t[d] - M[b][i][d];
            m += diff * diff / S[b][i][d];
          }
          p.push_back(std::exp(-0.5L * m));
          total += p.back();
        }
        size_t q = 0;
        for (const auto& [t, where] : first) {
          O[b][where.first][where.second] +=
              static_cast<double>(V[b][i] * p[q++] / total);
        }
      }
    }
  }
  return out;
}

struct Problem {
  at::Tensor points, means, sigmas, values;
};

// Means in [0, n-1]^r, sigmas of a few cells, samples from sample_tuples.
Problem make_problem(int64_t batch, int64_t k, std::vector<int64_t> sizes,
                     int64_t num_global, int64_t num_local, double sigma_scale,
                     int64_t seed) {
  at::manual_seed(seed);
  const int64_t r = sizes.size();
  const at::Tensor bound =
      at::tensor(sizes, kDouble).sub(1).view({1, 1, r});
  Problem p;
  p.means = at::rand({batch, k, r}, kDouble) * bound;
  p.sigmas = (at::rand({batch, k, r}, kDouble) + 0.2) * sigma_scale;
  p.values = at::randn({batch, k}, kDouble);
  std::vector<int64_t> region(r, 3);
  p.points =
      sample_tuples(p.means, sizes, num_global, num_local, region, seed);
  return p;
}

TEST(SpreadValues, DenseAndSparseMatchLoopReference) {
  for (int64_t chunk : {0, 1, 2, 6}) {
    const Problem p = make_problem(2, 6, {9, 7}, 3, 3, 2.0, 10 + chunk);
    const at::Tensor ref = reference(p.points, p.means, p.sigmas, p.values,
                                     chunk == 0 ? 6 : chunk);
    const at::Tensor dense =
        spread_values(p.points, p.means, p.sigmas, p.values, chunk, 0.0);
    const at::Tensor sparse =
        spread_values(p.points, p.means, p.sigmas, p.values, chunk, 1e-9);
    EXPECT_TRUE(at::allclose(dense, ref, 1e-12, 1e-12)) << "chunk " << chunk;
    EXPECT_TRUE(at::allclose(sparse, ref, 1e-8, 1e-9)) << "chunk " << chunk;
  }
}

TEST(SpreadValues, SparseWithinToleranceOfDenseAtScale) {
  // 64 x 64 identity-like layout with small sigmas: most pairs are cut off.
  const Problem p = make_problem(2, 64, {64, 64}, 4, 4, 0.5, 3);
  const at::Tensor dense =
      spread_values(p.points, p.means, p.sigmas, p.values, 0, 0.0);
  for (double tol : {1e-3, 1e-6, 1e-9}) {
    const at::Tensor sparse =
        spread_values(p.points, p.means, p.sigmas, p.values, 0, tol);
    // Each tuple's proportions lose at most a share `tol` of their mass.
    const double err = (sparse - dense).abs().max().item<double>();
    EXPECT_LE(err, 2 * tol * p.values.abs().max().item<double>())
        << "tolerance " << tol;
  }
}

TEST(SpreadValues, ProportionsSumToOnePerTuple) {
  const Problem p = make_problem(1, 5, {6, 6, 6}, 2, 2, 1.0, 4);
  for (int64_t i = 0; i < 5; ++i) {
    const at::Tensor one_hot = at::zeros({1, 5}, kDouble).index_fill_(1, at::tensor({i}), 1.0);
    const at::Tensor out =
        spread_values(p.points, p.means, p.sigmas, one_hot, 0, 1e-9);
    EXPECT_NEAR(out.sum().item<double>(), 1.0, 1e-9) << "tuple " << i;
    EXPECT_GE(out.min().item<double>(), 0.0);
  }
}

TEST(SpreadValues, DuplicatesGetNothing) {
  // Two tuples at the same integer mean: all 2 x 4 neighbours are (2, 3).
  const at::Tensor means = at::tensor({2.0, 3.0, 2.0, 3.0}, kDouble).reshape({1, 2, 2});
  const at::Tensor points = sample_tuples(means, {5, 5}, 0, 0, {1, 1}, 0);
  const at::Tensor out = spread_values(points, means, at::ones({1, 2, 2}, kDouble),
                                       at::tensor({1.0, 2.0}, kDouble).reshape({1, 2}),
                                       0, 0.0);
  // Only the first occurrence carries the whole value 1 + 2.
  EXPECT_DOUBLE_EQ(out[0][0][0].item<double>(), 3.0);
  EXPECT_DOUBLE_EQ(out.sum().item<double>(), 3.0);
  EXPECT_EQ(out.ne(0).sum().item<int64_t>(), 1);
}

TEST(SpreadValues, GradientsMatchFiniteDifferences) {
  for (double tol : {0.0, 1e-12}) {
    const Problem p = make_problem(2, 4, {6, 5}, 2, 2, 1.5, 5);
    const int64_t chunk = 2;
    auto f = [&](const std::vector<at::Tensor>& in) {
      return spread_values(p.points, in[0], in[1], in[2], chunk, tol);
    };
    const std::vector<at::Tensor> in = {p.means, p.sigmas, p.values};
    for (size_t wrt = 0; wrt < 3; ++wrt) {
      EXPECT_LT(testing::max_gradient_error(f, in, wrt), 1e-6)
          << "wrt " << wrt << " tolerance " << tol;
    }
  }
}

TEST(SpreadValues, Rank6LargeSizesNoOverflow) {
  // Sizes whose product (1e36) overflows int64: duplicates must still be
  // found exactly, and distinct tuples that a Cantor pairing in float would
  // merge must stay distinct.
  const int64_t big = 1000000;
  const std::vector<int64_t> sizes(6, big);
  at::Tensor means = at::full({1, 2, 6}, 123456.5, kDouble);
  means[0][1] = at::full({6}, 999998.25, kDouble);
  const at::Tensor points = sample_tuples(means, sizes, 2, 2, std::vector<int64_t>(6, 4), 1);
  ASSERT_EQ(points.size(2), 64 + 4);
  // Plant a duplicate: sample 64 of tuple 1 repeats its neighbour 0.
  at::Tensor planted = points.clone();
  planted[0][1][64] = planted[0][1][0];
  const at::Tensor sigmas = at::full({1, 2, 6}, 0.5, kDouble);
  const at::Tensor values = at::ones({1, 2}, kDouble);
  const at::Tensor out = spread_values(planted, means, sigmas, values, 0, 1e-9);
  EXPECT_EQ(out[0][1][64].item<double>(), 0.0);
  EXPECT_NEAR(out.sum().item<double>(), 2.0, 1e-9);
  EXPECT_TRUE(at::allclose(
      out, reference(planted, means, sigmas, values, 2), 1e-9, 1e-12));
}

TEST(SpreadValues, TinySigmaIsFinite) {
  for (auto dtype : {at::kFloat, at::kDouble}) {
    const Problem p = make_problem(1, 8, {16, 16}, 4, 4, 1.0, 6);
    const at::Tensor means = p.means.to(dtype).requires_grad_();
    const at::Tensor sigmas = at::full({1, 8, 2}, 1e-30, kDouble).to(dtype).requires_grad_();
    const at::Tensor values = p.values.to(dtype).requires_grad_();
    const at::Tensor out = spread_values(p.points, means, sigmas, values, 0, 1e-6);
    EXPECT_TRUE(at::isfinite(out).all().item<bool>());
    // All mass on each tuple's nearest neighbour: the values are conserved.
    EXPECT_NEAR(out.sum().item<double>(), values.sum().item<double>(), 1e-4);
    (out * at::randn_like(out)).sum().backward();
    for (const auto& t : {means, sigmas, values}) {
      EXPECT_TRUE(at::isfinite(t.grad()).all().item<bool>());
    }
  }
}

TEST(SpreadValues, BadInputNamesTheArgument) {
  const Problem p = make_problem(1, 4, {5, 5}, 1, 1, 1.0, 7);
  EXPECT_ERROR_CONTAINS(
      spread_values(p.points, p.means, -p.sigmas, p.values, 0, 0.0),
      "sigmas (variances) must be positive");
  at::Tensor nan = p.means.clone();
  nan[0][2][0] = NAN;
  EXPECT_ERROR_CONTAINS(spread_values(p.points, nan, p.sigmas, p.values, 0, 0.0),
                        "means contain NaN");
  EXPECT_ERROR_CONTAINS(
      spread_values(p.points, p.means, p.sigmas, p.values, 3, 0.0),
      "must be a multiple of chunk_size = 3");
  EXPECT_ERROR_CONTAINS(
      spread_values(p.points, p.means, p.sigmas, p.values, 0, 1.5),
      "tolerance must be in [0, 1)");
  EXPECT_ERROR_CONTAINS(
      spread_values(p.points.slice(2, 0, 3), p.means, p.sigmas, p.values, 0, 0.0),
      "2^rank = 4 floor/ceil neighbours");
  EXPECT_ERROR_CONTAINS(
      spread_values(p.points, p.means, p.sigmas.to(at::kFloat), p.values, 0, 0.0),
      "means and sigmas must have the same dtype");
  EXPECT_ERROR_CONTAINS(
      spread_values(p.points, p.means, p.sigmas, p.values.slice(1, 0, 3), 0, 0.0),
      "values must be [batch, k] = [1, 4]");
  EXPECT_ERROR_CONTAINS(
      spread_values(p.points.to(at::kInt), p.means, p.sigmas, p.values, 0, 0.0),
      "points must have dtype int64");
}

}  // namespace
}  // namespace indexgrad
