// Tests of spread_values against an independent loop implementation of the
// paper's formula (Algorithm 1: densities, duplicates zeroed, normalised per
// tuple over its chunk), sparse vs dense, finite-difference gradients in
// double, rank-6 tuples with large sizes, tiny sigma, bad input.
#include "kernels/spread_values/spread_values.h"
#include "kernels/spread_values/spread_values_direct.h"
#include "kernels/spread_values/spread_values_math.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
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

TEST(SpreadValues, EveryChunkPathMatchesTheLoopReference) {
  // Chunks of at most 96 points skip the grid (TinyChunk: 32-bit vector
  // comparisons at rank <= 2 in 16-, 64- and 96-entry blocks, pair by pair
  // past 2^31 or at rank 3); beyond, a grid of cells. 8 points per tuple
  // (4 neighbours, 2 local, 2 global), chunks of 1, 8, 9, 12 and 13 tuples
  // cover 8, 64, 72, 96 and 104 points; every third tuple repeats one of
  // its predecessor's points.
  for (const std::vector<int64_t>& sizes :
       {std::vector<int64_t>{40, 40}, std::vector<int64_t>{int64_t(1) << 40, 7},
        std::vector<int64_t>{9, 9, 9}}) {
    for (int64_t chunk : {1, 8, 9, 12, 13}) {
      const int64_t k = 2 * chunk;
      at::manual_seed(20 + chunk);
      const int64_t r = static_cast<int64_t>(sizes.size());
      at::Tensor bound = at::tensor(sizes, kDouble).sub(1).view({1, 1, r});
      const at::Tensor means = at::rand({2, k, r}, kDouble) * bound.clamp_max(60);
      const at::Tensor sigmas = at::rand({2, k, r}, kDouble) * 4 + 0.3;
      const at::Tensor values = at::randn({2, k}, kDouble);
      at::Tensor points = sample_tuples(means, sizes, 2, 2,
                                        std::vector<int64_t>(r, 3), chunk);
      ASSERT_EQ(points.size(2), (int64_t(1) << r) + 4);
      for (int64_t i = 1; i < k; i += 3) points[1][i][5] = points[1][i - 1][6];
      const at::Tensor ref = reference(points, means, sigmas, values, chunk);
      const std::string where = "sizes[0] " + std::to_string(sizes[0]) + " rank " +
                                std::to_string(r) + " chunk " + std::to_string(chunk);
      EXPECT_TRUE(at::allclose(spread_values(points, means, sigmas, values, chunk, 0.0),
                               ref, 1e-12, 1e-12)) << where;
      EXPECT_TRUE(at::allclose(spread_values(points, means, sigmas, values, chunk, 1e-9),
                               ref, 1e-8, 1e-9)) << where;
      EXPECT_TRUE(at::allclose(
          spread_values(points, means.to(at::kFloat), sigmas.to(at::kFloat),
                        values.to(at::kFloat), chunk, 1e-6).to(at::kDouble),
          ref, 1e-4, 1e-5)) << where;
      if (chunk != 8 && chunk != 13) continue;  // one tiny, one grid chunk
      auto f = [&](const std::vector<at::Tensor>& in) {
        return spread_values(points, in[0], in[1], in[2], chunk, 1e-12);
      };
      const std::vector<at::Tensor> in = {means, sigmas, values};
      for (size_t wrt = 0; wrt < 3; ++wrt) {
        EXPECT_LT(testing::max_gradient_error(f, in, wrt), 1e-6)
            << where << " wrt " << wrt;
      }
    }
  }
}

// spread_values computed by the CUDA kernels' per-thread bodies
// (spread_values_direct.h), run here for every thread index in the kernels'
// order: repeats (per point), totals (per tuple), values (per point); and
// the backward's gradients (per tuple).
struct DirectResult {
  at::Tensor out, grad_means, grad_sigmas, grad_values;

  DirectResult(int64_t batch, int64_t k, int64_t s, int rank)
      : out(at::zeros({batch, k, s}, kDouble)),
        grad_means(at::zeros({batch, k, rank}, kDouble)),
        grad_sigmas(at::zeros({batch, k, rank}, kDouble)),
        grad_values(at::zeros({batch, k}, kDouble)) {}
  void Store(int64_t t, int rank, const TupleGradient& tg) {
    for (int d = 0; d < rank; ++d) {
      grad_means.data_ptr<double>()[t * rank + d] = tg.mu[d];
      grad_sigmas.data_ptr<double>()[t * rank + d] = tg.sigma[d];
    }
    grad_values.data_ptr<double>()[t] = tg.value;
  }
};

template <typename scalar_t>
DirectResult RunDirectBodies(const at::Tensor& points, const at::Tensor& means,
                             const at::Tensor& sigmas, const at::Tensor& values,
                             const at::Tensor& grad, int64_t chunk, double tolerance) {
  const int64_t batch = points.size(0), k = points.size(1), s = points.size(2);
  const SpreadLayout layout = detail::spread_layout(points, chunk == 0 ? k : chunk, tolerance);
  const int64_t tuples = batch * k, n = tuples * s;
  const int64_t* pts = points.data_ptr<int64_t>();
  const scalar_t* mu = means.data_ptr<scalar_t>();
  const scalar_t* sg = sigmas.data_ptr<scalar_t>();
  const scalar_t* v = values.data_ptr<scalar_t>();
  const scalar_t* g = grad.data_ptr<scalar_t>();
  std::vector<uint8_t> repeats(n);
  std::vector<double> totals(tuples);
  for (int64_t p = 0; p < n; ++p) repeats[p] = point_repeats(layout, pts, p);
  for (int64_t t = 0; t < tuples; ++t) {
    totals[t] = tuple_total(ChunkReach{layout}, pts, repeats.data(), mu, sg, t);
  }
  DirectResult r(batch, k, s, layout.rank);
  double* out = r.out.data_ptr<double>();
  for (int64_t p = 0; p < n; ++p) {
    out[p] = point_value(layout, pts, repeats.data(), mu, sg, v, totals.data(), p);
  }
  for (int64_t t = 0; t < tuples; ++t) {
    r.Store(t, layout.rank,
            tuple_gradient(ChunkReach{layout}, pts, repeats.data(), mu, sg, v, g, t));
  }
  return r;
}

TEST(SpreadValues, CudaThreadBodiesMatchTheCpuOp) {
  // Ranks 2 and 3; chunks of 1 and 3 tuples and whole rows; dense and cut
  // off; repeated points; means on the borders; float and double; no tuples.
  for (const std::vector<int64_t>& sizes :
       {std::vector<int64_t>{12, 9}, std::vector<int64_t>{6, 5, 7}}) {
    for (int64_t chunk : {1, 3, 0}) {
      for (double tolerance : {0.0, 1e-9}) {
        const int64_t r = static_cast<int64_t>(sizes.size()), k = 6;
        at::manual_seed(40 + chunk);
        const at::Tensor bound = at::tensor(sizes, kDouble).sub(1).view({1, 1, r});
        at::Tensor means = at::rand({2, k, r}, kDouble) * bound;
        means[0][0] = bound.view({r});  // the upper border
        means[1][1] = at::zeros({r}, kDouble);
        const at::Tensor sigmas = at::rand({2, k, r}, kDouble) * 3 + 0.2;
        const at::Tensor values = at::randn({2, k}, kDouble);
        at::Tensor points = sample_tuples(means, sizes, 2, 2, std::vector<int64_t>(r, 3), 7);
        for (int64_t i = 1; i < k; i += 2) points[1][i][5] = points[1][i - 1][6];
        const at::Tensor grad = at::randn({2, k, points.size(2)}, kDouble);
        const std::string where = "rank " + std::to_string(r) + " chunk " +
                                  std::to_string(chunk) + " tolerance " +
                                  std::to_string(tolerance);
        for (auto dtype : {at::kDouble, at::kFloat}) {
          const at::Tensor m = means.to(dtype), sg = sigmas.to(dtype), v = values.to(dtype),
                           g = grad.to(dtype);
          const DirectResult direct =
              dtype == at::kDouble
                  ? RunDirectBodies<double>(points, m, sg, v, g, chunk, tolerance)
                  : RunDirectBodies<float>(points, m, sg, v, g, chunk, tolerance);
          const at::Tensor cpu = spread_values(points, m, sg, v, chunk, tolerance);
          const auto [gm, gs, gv] =
              detail::_spread_values_backward(g, points, m, sg, v, chunk, tolerance);
          const double rtol = dtype == at::kDouble ? 1e-12 : 1e-4;
          const double atol = dtype == at::kDouble ? 1e-12 : 1e-5;
          const std::string w = where + (dtype == at::kDouble ? " double" : " float");
          EXPECT_TRUE(at::allclose(direct.out, cpu.to(at::kDouble), rtol, atol)) << w;
          EXPECT_TRUE(at::allclose(direct.grad_means, gm.to(at::kDouble), rtol, atol)) << w;
          EXPECT_TRUE(at::allclose(direct.grad_sigmas, gs.to(at::kDouble), rtol, atol)) << w;
          EXPECT_TRUE(at::allclose(direct.grad_values, gv.to(at::kDouble), rtol, atol)) << w;
        }
      }
    }
  }
  // No tuples: no threads, nothing to compare but the shapes.
  const at::Tensor none = at::zeros({2, 0, 2}, kDouble);
  const at::Tensor no_points = at::zeros({2, 0, 8, 2}, at::kLong);
  const DirectResult empty = RunDirectBodies<double>(
      no_points, none, none, at::zeros({2, 0}, kDouble), at::zeros({2, 0, 8}, kDouble), 0, 0.0);
  EXPECT_EQ(empty.out.sizes(), at::IntArrayRef({2, 0, 8}));
}

// The same through the grid bodies (spread_values_grid.h), as the CUDA
// kernels run them for large chunks: keys per point, a stable sort, repeats
// per point, totals per tuple, the scatter per tuple (a plain add here,
// atomicAdd there), gradients per tuple.
template <typename scalar_t>
DirectResult RunGridBodies(const at::Tensor& points, const at::Tensor& means,
                           const at::Tensor& sigmas, const at::Tensor& values,
                           const at::Tensor& grad, int64_t chunk, double tolerance,
                           int64_t cell) {
  const int64_t batch = points.size(0), k = points.size(1), s = points.size(2);
  const SpreadLayout layout = detail::spread_layout(points, chunk == 0 ? k : chunk, tolerance);
  const SpreadGrid grid = detail::make_spread_grid(points, sigmas, layout, cell);
  const int64_t tuples = batch * k, n = tuples * s;
  const int64_t* pts = points.data_ptr<int64_t>();
  at::Tensor keys = at::empty({n}, at::kLong);
  for (int64_t p = 0; p < n; ++p) keys.data_ptr<int64_t>()[p] = grid_key(layout, grid, pts, p);
  const auto [sorted, order] = keys.sort(/*stable=*/true, 0, false);
  const GridReach reach{layout, grid, sorted.data_ptr<int64_t>(), order.data_ptr<int64_t>()};
  const scalar_t* mu = means.data_ptr<scalar_t>();
  const scalar_t* sg = sigmas.data_ptr<scalar_t>();
  const scalar_t* v = values.data_ptr<scalar_t>();
  const scalar_t* g = grad.data_ptr<scalar_t>();
  std::vector<uint8_t> repeats(n);
  std::vector<double> totals(tuples);
  for (int64_t p = 0; p < n; ++p) {
    repeats[p] = grid_point_repeats(reach, pts, p);
    EXPECT_EQ(repeats[p], point_repeats(layout, pts, p)) << "point " << p;
  }
  for (int64_t t = 0; t < tuples; ++t) {
    totals[t] = tuple_total(reach, pts, repeats.data(), mu, sg, t);
  }
  DirectResult r(batch, k, s, layout.rank);
  for (int64_t t = 0; t < tuples; ++t) {
    grid_tuple_scatter(reach, pts, repeats.data(), mu, sg, v, totals.data(), t,
                       r.out.data_ptr<double>(), [](double* at, double x) { *at += x; });
    r.Store(t, layout.rank, tuple_gradient(reach, pts, repeats.data(), mu, sg, v, g, t));
  }
  return r;
}

TEST(SpreadValues, GridBodiesMatchTheCpuOp) {
  // Ranks 2 and 3, whole rows and chunks of 3, two tolerances, cells of
  // 1, 2 and 7 indices, the automatic size and one cell for everything;
  // repeated points, means on the borders and outside, float and double.
  for (const std::vector<int64_t>& sizes :
       {std::vector<int64_t>{40, 30}, std::vector<int64_t>{9, 12, 7}}) {
    for (int64_t chunk : {0, 3}) {
      for (double tolerance : {1e-9, 1e-3}) {
        const int64_t r = static_cast<int64_t>(sizes.size()), k = 12;
        at::manual_seed(60 + chunk);
        const at::Tensor bound = at::tensor(sizes, kDouble).sub(1).view({1, 1, r});
        at::Tensor means = at::rand({2, k, r}, kDouble) * bound;
        means[0][0] = bound.view({r});
        means[1][1] = at::zeros({r}, kDouble);
        at::Tensor sigmas = at::rand({2, k, r}, kDouble) * 4 + 0.05;
        sigmas[0][3] = at::full({r}, 1e-6, kDouble);  // a needle
        const at::Tensor values = at::randn({2, k}, kDouble);
        at::Tensor points = sample_tuples(means, sizes, 2, 3, std::vector<int64_t>(r, 3), 9);
        for (int64_t i = 1; i < k; i += 2) points[1][i][5] = points[1][i - 1][6];
        means[1][2] = bound.view({r}) + 3;  // a mean beyond its points
        const at::Tensor grad = at::randn({2, k, points.size(2)}, kDouble);
        for (int64_t cell : {1, 2, 7, 0, 1 << 20}) {
          for (auto dtype : {at::kDouble, at::kFloat}) {
            const at::Tensor m = means.to(dtype), sg = sigmas.to(dtype), v = values.to(dtype),
                             g = grad.to(dtype);
            const DirectResult grid =
                dtype == at::kDouble
                    ? RunGridBodies<double>(points, m, sg, v, g, chunk, tolerance, cell)
                    : RunGridBodies<float>(points, m, sg, v, g, chunk, tolerance, cell);
            const at::Tensor cpu = spread_values(points, m, sg, v, chunk, tolerance);
            const auto [gm, gs, gv] =
                detail::_spread_values_backward(g, points, m, sg, v, chunk, tolerance);
            const double rtol = dtype == at::kDouble ? 1e-11 : 1e-4;
            const double atol = dtype == at::kDouble ? 1e-11 : 1e-5;
            const std::string w = "rank " + std::to_string(r) + " chunk " +
                                  std::to_string(chunk) + " tolerance " +
                                  std::to_string(tolerance) + " cell " + std::to_string(cell) +
                                  (dtype == at::kDouble ? " double" : " float");
            EXPECT_TRUE(at::allclose(grid.out, cpu.to(at::kDouble), rtol, atol)) << w;
            EXPECT_TRUE(at::allclose(grid.grad_means, gm.to(at::kDouble), rtol, atol)) << w;
            EXPECT_TRUE(at::allclose(grid.grad_sigmas, gs.to(at::kDouble), rtol, atol)) << w;
            EXPECT_TRUE(at::allclose(grid.grad_values, gv.to(at::kDouble), rtol, atol)) << w;
          }
        }
      }
    }
  }
}

TEST(SpreadValues, CudaEqualsCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  // chunk 1 and 16-tuple rows: direct sums; 96-tuple rows (at least
  // kSpreadGridMinPoints points per chunk): the grid.
  for (auto [chunk, k] : std::vector<std::pair<int64_t, int64_t>>{{1, 16}, {0, 16}, {0, 96}}) {
    for (auto dtype : {at::kDouble, at::kFloat}) {
      const Problem p = make_problem(2, k, {40, 40}, 4, 4, 1.0, 50 + chunk + k);
      const at::Tensor m = p.means.to(dtype), sg = p.sigmas.to(dtype), v = p.values.to(dtype);
      const at::Tensor grad = at::randn(p.points.sizes().slice(0, 3), kDouble).to(dtype);
      const at::Tensor cpu = spread_values(p.points, m, sg, v, chunk, 1e-6);
      const at::Tensor gpu =
          spread_values(p.points.cuda(), m.cuda(), sg.cuda(), v.cuda(), chunk, 1e-6);
      const double rtol = dtype == at::kDouble ? 1e-12 : 1e-4;
      const double atol = dtype == at::kDouble ? 1e-12 : 1e-5;
      EXPECT_TRUE(at::allclose(gpu.cpu(), cpu, rtol, atol)) << "chunk " << chunk;
      const auto [gm, gs, gv] = detail::_spread_values_backward(grad, p.points, m, sg, v, chunk, 1e-6);
      const auto [cm, cs, cv] = detail::_spread_values_backward(
          grad.cuda(), p.points.cuda(), m.cuda(), sg.cuda(), v.cuda(), chunk, 1e-6);
      EXPECT_TRUE(at::allclose(cm.cpu(), gm, rtol, atol)) << "chunk " << chunk;
      EXPECT_TRUE(at::allclose(cs.cpu(), gs, rtol, atol)) << "chunk " << chunk;
      EXPECT_TRUE(at::allclose(cv.cpu(), gv, rtol, atol)) << "chunk " << chunk;
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

TEST(SpreadValues, DroppedShareBelowToleranceForWideTinyAndMixedVariances) {
  // Every batch row holds the same 48 tuples (one chunk, 64 x 64) and row b
  // gives tuple b value 1, the others 0: row b of the output is tuple b's
  // proportions over the chunk's points. Cutting off a share s of a tuple's
  // mass and renormalising moves its proportions by at most 2 s in L1.
  const int64_t k = 48;
  at::manual_seed(11);
  const at::Tensor base = at::rand({1, k, 2}, kDouble) * 63;
  const at::Tensor means = base.expand({k, k, 2}).contiguous();
  const at::Tensor points = sample_tuples(base, {64, 64}, 4, 4, {3, 3}, 2)
                                .expand({k, k, -1, 2})
                                .contiguous();
  const at::Tensor values = at::eye(k, kDouble);
  const std::vector<std::pair<const char*, at::Tensor>> variances = {
      {"wide", at::full({1, k, 2}, 200.0, kDouble)},
      {"tiny", at::full({1, k, 2}, 0.02, kDouble)},
      {"mixed", at::exp(at::rand({1, k, 2}, kDouble) * 12 - 5)},  // e^-5..e^7
  };
  for (const auto& [name, v] : variances) {
    const at::Tensor sigmas = v.expand({k, k, 2}).contiguous();
    const at::Tensor dense = spread_values(points, means, sigmas, values, 0, 0.0);
    // The dense rows are distributions (a check of the setup itself).
    EXPECT_TRUE(at::allclose(dense.sum({1, 2}), at::ones({k}, kDouble), 1e-12));
    for (double tol : {1e-2, 1e-4, 1e-6}) {
      const at::Tensor sparse =
          spread_values(points, means, sigmas, values, 0, tol);
      const at::Tensor l1 = (sparse - dense).abs().sum({1, 2});
      EXPECT_LE(l1.max().item<double>(), 2 * tol) << name << " tolerance " << tol;
    }
  }
}

TEST(SpreadValues, FloatMatchesDouble) {
  // Float inputs are computed in float (coordinates exact in float) or, past
  // 2^24, in double; both agree with the double computation to float
  // precision, values and gradients.
  for (int64_t side : {int64_t(40), int64_t(1) << 25}) {
    at::manual_seed(12);
    const at::Tensor means = (at::rand({2, 16, 2}, kDouble) * (side - 1))
                                 .to(at::kFloat).to(at::kDouble);
    const at::Tensor sigmas = at::rand({2, 16, 2}, kDouble) * 8 + 0.5;
    const at::Tensor values = at::randn({2, 16}, kDouble);
    const at::Tensor points = sample_tuples(means, {side, side}, 4, 4, {5, 5}, 3);
    std::vector<at::Tensor> grads[2];
    at::Tensor outs[2];
    for (int f = 0; f < 2; ++f) {
      const auto dtype = f ? at::kFloat : at::kDouble;
      const at::Tensor m = means.to(dtype).detach().requires_grad_();
      const at::Tensor s = sigmas.to(dtype).detach().requires_grad_();
      const at::Tensor v = values.to(dtype).detach().requires_grad_();
      outs[f] = spread_values(points, m, s, v, 0, 1e-6);
      (outs[f] * at::arange(outs[f].numel()).view_as(outs[f]).to(dtype).sin())
          .sum()
          .backward();
      grads[f] = {m.grad().to(at::kDouble), s.grad().to(at::kDouble),
                  v.grad().to(at::kDouble)};
    }
    EXPECT_TRUE(at::allclose(outs[1].to(at::kDouble), outs[0], 1e-4, 1e-5))
        << "side " << side;
    for (int i = 0; i < 3; ++i) {
      const double scale = std::max(1.0, grads[0][i].abs().max().item<double>());
      EXPECT_LE((grads[1][i] - grads[0][i]).abs().max().item<double>(),
                1e-3 * scale)
          << "side " << side << " gradient " << i;
    }
  }
}

TEST(SpreadValues, ManyPointsInOneGridCell) {
  // Rank 3 with the first two coordinates constant: every point falls in one
  // grid cell, whose repeats are then found by sorting; a third of the
  // points are planted copies of earlier ones.
  const int64_t k = 40;
  at::manual_seed(13);
  at::Tensor means = at::rand({1, k, 3}, kDouble) * 99;
  means.select(2, 0).fill_(5.0);
  means.select(2, 1).fill_(7.0);
  const at::Tensor sigmas = at::rand({1, k, 3}, kDouble) * 30 + 1;
  const at::Tensor values = at::randn({1, k}, kDouble);
  at::Tensor points = sample_tuples(means, {10, 10, 100}, 0, 6, {1, 1, 9}, 4);
  for (int64_t i = 1; i < k; i += 3) points[0][i][8] = points[0][i - 1][9];
  const at::Tensor ref = reference(points, means, sigmas, values, k);
  EXPECT_TRUE(at::allclose(spread_values(points, means, sigmas, values, 0, 0.0),
                           ref, 1e-12, 1e-12));
  EXPECT_TRUE(at::allclose(spread_values(points, means, sigmas, values, 0, 1e-9),
                           ref, 1e-8, 1e-9));
}

TEST(SpreadValuesMath, ExpMatchesLibmOverTheRange) {
  double worst = 0, worst_f = 0;
  for (int i = 0; i <= 200000; ++i) {
    const double x = -708.0 * i / 200000;
    const double e = std::exp(x);
    worst = std::max(worst, std::abs(exp_nonpositive(x) - e) / e);
    if (x >= -87) {
      const float xf = static_cast<float>(x);
      const double ef = std::exp(static_cast<double>(xf));
      worst_f = std::max(
          worst_f, std::abs(static_cast<double>(exp_nonpositive(xf)) - ef) / ef);
    }
  }
  EXPECT_LT(worst, 1e-15);
  EXPECT_LT(worst_f, 3e-7);
  EXPECT_EQ(exp_nonpositive(0.0), 1.0);
  EXPECT_GT(exp_nonpositive(-708.0), 0.0);  // the last normal value
  EXPECT_EQ(exp_nonpositive(-1e6), 0.0);     // underflow: exactly 0, not NaN
  EXPECT_EQ(exp_nonpositive(-1e6f), 0.0f);
}

TEST(SpreadValuesMath, ExcessIsExactlyZeroAtTheNearestPoint) {
  for (double sigma : {1e-300, 1e-30, 1e-3, 1.0, 1e6}) {
    for (double mu : {0.0, 2.5, 3.25, 1e5 + 0.75, 12345678.9}) {
      const DimTerm<double> d = DimTerm<double>::Make(mu, sigma);
      EXPECT_EQ(d.Excess(d.t0), 0.0) << mu << " " << sigma;
      const double other = d.t0 == std::floor(mu) ? std::ceil(mu) : std::floor(mu);
      EXPECT_GE(d.Excess(other), 0.0) << mu << " " << sigma;
      EXPECT_GE(d.Excess(d.t0 + 3), 0.0);
      EXPECT_FALSE(std::isnan(d.Excess(d.t0 - 2)));
      const DimTerm<float> f = DimTerm<float>::Make(mu, sigma);
      EXPECT_EQ(f.Excess(f.t0), 0.0f) << mu << " " << sigma;
    }
  }
  // Against the direct formula where it is well conditioned.
  const DimTerm<double> d = DimTerm<double>::Make(3.3, 2.0);
  EXPECT_NEAR(d.Excess(7), ((7 - 3.3) * (7 - 3.3) - 0.3 * 0.3) / 2.0, 1e-14);
}

TEST(SpreadValues, SubnormalSigmaIsFinite) {
  // 1 / sigma overflows a double: every point but the nearest is out of
  // reach, the nearest keeps the whole value, gradients stay finite.
  const Problem p = make_problem(1, 6, {16, 16}, 4, 4, 1.0, 8);
  const at::Tensor sigmas = at::full({1, 6, 2}, 1e-310, kDouble).requires_grad_();
  const at::Tensor means = p.means.clone().requires_grad_();
  const at::Tensor values = p.values.clone().requires_grad_();
  for (double tol : {0.0, 1e-6}) {
    const at::Tensor out = spread_values(p.points, means, sigmas, values, 0, tol);
    EXPECT_TRUE(at::isfinite(out).all().item<bool>()) << tol;
    EXPECT_NEAR(out.sum().item<double>(), values.sum().item<double>(), 1e-9) << tol;
    (out * at::randn_like(out)).sum().backward();
    for (const auto& t : {means, sigmas, values}) {
      EXPECT_TRUE(at::isfinite(t.grad()).all().item<bool>()) << tol;
      t.grad().zero_();
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
                        "means contain NaN or infinity");
  at::Tensor inf = p.means.clone();
  inf[0][1][1] = -INFINITY;
  EXPECT_ERROR_CONTAINS(spread_values(p.points, inf, p.sigmas, p.values, 0, 0.0),
                        "spread_values: means contain NaN or infinity");
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
