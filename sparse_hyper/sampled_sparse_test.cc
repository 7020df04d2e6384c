// Tests of SampledSparseProduct and SamplingFrom: outputs against a loop
// implementation of the paper's formula (per-row and shared sample sets,
// chunks, drawn samples, fixed dimensions), reproducibility by seed,
// finite-difference gradients in double, and errors by message.
#include "sparse_hyper/sampled_sparse.h"

#include <gtest/gtest.h>
#include <torch/arg.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/sample_tuples/sample_tuples.h"
#include "kernels/testing/expect_error.h"
#include "kernels/testing/gradcheck.h"

namespace indexgrad {
namespace sparse_hyper {
namespace {

const auto kDouble = at::TensorOptions().dtype(at::kDouble);

using Point = std::vector<int64_t>;

// The 2^r floor/ceil neighbours of every tuple, by loops: [batch, k, 2^r, r].
at::Tensor LoopNeighbours(const at::Tensor& means) {
  const int64_t batch = means.size(0), k = means.size(1), r = means.size(2);
  at::Tensor out = at::empty({batch, k, int64_t{1} << r, r}, at::kLong);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < k; ++i) {
      for (int64_t c = 0; c < (int64_t{1} << r); ++c) {
        for (int64_t d = 0; d < r; ++d) {
          const double m = means[b][i][d].item<double>();
          const bool ceil = (c >> d) & 1;
          out[b][i][c][d] = static_cast<int64_t>(ceil ? std::ceil(m) : std::floor(m));
        }
      }
    }
  }
  return out;
}

// y = W x by loops, W from the paper's proportions: each tuple i of a chunk
// gives every distinct point j of the chunk (the union of its tuples'
// points) the weight exp(-1/2 sum_d (t_jd - mu_id)^2 / sigma_id),
// normalised over j, times v_i. In a fixed dimension d a tuple's points
// sit at round-half-up(mu_id) and it weighs only points with that
// coordinate (the distance in d is then a common factor and cancels).
// points [mb, k, s, r] (mb = means' batch: x's batch or 1).
at::Tensor LoopReference(const at::Tensor& x, const at::Tensor& means, const at::Tensor& sigmas,
                         const at::Tensor& values, const at::Tensor& points,
                         const std::vector<int64_t>& sizes, int64_t out_rank, int64_t chunk,
                         const std::vector<bool>& fixed = {}) {
  const int64_t batch = x.size(0), k = means.size(1), r = means.size(2), s = points.size(2);
  const int64_t per_chunk = chunk == 0 ? k : chunk;
  int64_t n_out = 1, n_in = 1;
  for (int64_t d = 0; d < r; ++d) (d < out_rank ? n_out : n_in) *= sizes[d];
  const at::Tensor xf = x.to(at::kDouble).reshape({batch, n_in});
  std::vector<int64_t> out_shape = {batch};
  for (int64_t d = 0; d < out_rank; ++d) out_shape.push_back(sizes[d]);
  at::Tensor y = at::zeros({batch, n_out}, kDouble);
  auto is_fixed = [&](int64_t d) { return !fixed.empty() && fixed[d]; };
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t mb = means.size(0) == 1 ? 0 : b;
    auto mu = [&](int64_t i, int64_t d) { return means[mb][i][d].item<double>(); };
    auto own = [&](int64_t i, int64_t d) { return int64_t(std::floor(mu(i, d) + 0.5)); };
    at::Tensor w = at::zeros({n_out, n_in}, kDouble);
    for (int64_t c0 = 0; c0 < k; c0 += per_chunk) {
      std::vector<Point> distinct;
      for (int64_t i = c0; i < c0 + per_chunk; ++i) {
        for (int64_t j = 0; j < s; ++j) {
          Point t(r);
          for (int64_t d = 0; d < r; ++d) {
            t[d] = is_fixed(d) ? own(i, d) : points[mb][i][j][d].item<int64_t>();
          }
          if (std::find(distinct.begin(), distinct.end(), t) == distinct.end()) {
            distinct.push_back(t);
          }
        }
      }
      for (int64_t i = c0; i < c0 + per_chunk; ++i) {
        std::vector<double> p;
        double total = 0;
        for (const Point& t : distinct) {
          double m = 0;
          bool other = false;
          for (int64_t d = 0; d < r; ++d) {
            if (is_fixed(d)) {
              other = other || t[d] != own(i, d);
            } else {
              const double diff = t[d] - mu(i, d);
              m += diff * diff / sigmas[mb][i][d].item<double>();
            }
          }
          p.push_back(other ? 0.0 : std::exp(-0.5 * m));
          total += p.back();
        }
        for (size_t q = 0; q < distinct.size(); ++q) {
          int64_t row = 0, col = 0;
          for (int64_t d = 0; d < r; ++d) {
            if (d < out_rank) {
              row = row * sizes[d] + distinct[q][d];
            } else {
              col = col * sizes[d] + distinct[q][d];
            }
          }
          w[row][col] += values[mb][i].item<double>() * p[q] / total;
        }
      }
    }
    y[b] = at::matmul(w, xf[b]);
  }
  return y.view(out_shape);
}

SamplingOptions Options(int64_t num_global, int64_t num_local, std::vector<int64_t> region,
                        int64_t chunk_size, double tolerance) {
  SamplingOptions s;
  s.num_global = num_global;
  s.num_local = num_local;
  s.region = std::move(region);
  s.chunk_size = chunk_size;
  s.tolerance = tolerance;
  return s;
}

// Means in [0, size - 1] with one component an exact integer (floor = ceil:
// repeated neighbours) and one on the upper bound.
at::Tensor TestMeans(int64_t batch, int64_t k, const std::vector<int64_t>& sizes) {
  const at::Tensor top = at::tensor(sizes, kDouble) - 1;
  at::Tensor means = at::rand({batch, k, int64_t(sizes.size())}, kDouble) * top;
  means[0][0][1] = 2.0;
  means[batch - 1][1] = top;
  return means;
}

TEST(SampledSparseProduct, NeighboursOnlyMatchLoopReferencePerRowAndChunk) {
  at::manual_seed(0);
  const std::vector<int64_t> sizes = {4, 3, 5};  // out [4], in [3, 5]
  const int64_t batch = 2, k = 6;
  const at::Tensor x = at::randn({batch, 3, 5}, kDouble);
  const at::Tensor means = TestMeans(batch, k, sizes);
  const at::Tensor sigmas = at::rand({batch, k, 3}, kDouble) * 2 + 0.3;
  const at::Tensor values = at::randn({batch, k}, kDouble);
  for (int64_t chunk : {0, 1, 3}) {
    const at::Tensor expect =
        LoopReference(x, means, sigmas, values, LoopNeighbours(means), sizes, 1, chunk);
    for (double tolerance : {0.0, 1e-10}) {
      const at::Tensor y = SampledSparseProduct(x, means, sigmas, values, /*out_shape=*/{4}, sizes,
                                                Options(0, 0, {1, 1, 1}, chunk, tolerance), {},
                                                /*seed=*/0);
      ASSERT_EQ(y.sizes(), (at::IntArrayRef{batch, 4}));
      EXPECT_TRUE(at::allclose(y, expect, 1e-9, 1e-11))
          << "chunk " << chunk << " tolerance " << tolerance << "\n" << y << "\n" << expect;
    }
  }
  // Chunks change the normalisation: chunk 1 differs from one chunk.
  const at::Tensor one = SampledSparseProduct(x, means, sigmas, values, {4}, sizes,
                                              Options(0, 0, {1, 1, 1}, 0, 0), {}, 0);
  const at::Tensor per_tuple = SampledSparseProduct(x, means, sigmas, values, {4}, sizes,
                                                    Options(0, 0, {1, 1, 1}, 1, 0), {}, 0);
  EXPECT_FALSE(at::allclose(one, per_tuple, 1e-6, 1e-8));
}

TEST(SampledSparseProduct, DrawnSamplesMatchLoopReferenceOverTheDrawnPoints) {
  // Global and local samples: the points are sample_tuples' for the seed
  // (its own tests cover the draw); the product over them is checked by
  // loops, for per-row means and for one sample set (batch 1) shared by
  // every row of x, with x in float and the parameters in double.
  at::manual_seed(1);
  const std::vector<int64_t> sizes = {5, 6};
  const at::Tensor x = at::randn({3, 6}, kDouble);
  for (int64_t mb : {3, 1}) {
    const at::Tensor means = TestMeans(mb, 4, sizes);
    const at::Tensor sigmas = at::rand({mb, 4, 2}, kDouble) + 0.2;
    const at::Tensor values = at::randn({mb, 4}, kDouble);
    const std::vector<int64_t> region = {2, 3};
    const at::Tensor points = sample_tuples(means, sizes, /*num_global=*/3, /*num_local=*/4,
                                            region, /*seed=*/7);
    ASSERT_EQ(points.size(2), 4 + 3 + 4);
    const at::Tensor y = SampledSparseProduct(x.to(at::kFloat), means, sigmas, values, {5}, sizes,
                                              Options(3, 4, region, 2, 0), {}, 7);
    EXPECT_EQ(y.scalar_type(), at::kDouble);
    const at::Tensor expect =
        LoopReference(x.to(at::kFloat), means, sigmas, values, points, sizes, 1, 2);
    EXPECT_TRUE(at::allclose(y, expect, 1e-9, 1e-11)) << "means batch " << mb;
    // The extra samples matter: neighbours alone give another output.
    const at::Tensor neighbours_only = LoopReference(x.to(at::kFloat), means, sigmas, values,
                                                     LoopNeighbours(means), sizes, 1, 2);
    EXPECT_FALSE(at::allclose(y, neighbours_only, 1e-6, 1e-8)) << "means batch " << mb;
  }
}

TEST(SampledSparseProduct, TheSeedFixesTheSamples) {
  at::manual_seed(2);
  const std::vector<int64_t> sizes = {16, 16};
  const at::Tensor x = at::randn({2, 16}, kDouble);
  const at::Tensor means = TestMeans(2, 8, sizes);
  const at::Tensor sigmas = at::rand({2, 8, 2}, kDouble) + 0.5;
  const at::Tensor values = at::randn({2, 8}, kDouble);
  const SamplingOptions s = Options(4, 4, {4, 4}, 0, 1e-6);
  auto run = [&](int64_t seed) {
    return SampledSparseProduct(x, means, sigmas, values, {16}, sizes, s, {}, seed);
  };
  EXPECT_TRUE(at::equal(run(11), run(11)));
  EXPECT_FALSE(at::allclose(run(11), run(12)));
}

TEST(SampledSparseProduct, FixedDimensionsKeepEachTuplesOwnCoordinate) {
  // Output dimension 0 fixed (the attention template): every sample of a
  // tuple keeps its rounded output coordinate and the tuple gives no mass
  // to other rows, even with global and local samples spread over them.
  at::manual_seed(3);
  const std::vector<int64_t> sizes = {6, 4, 5};  // out [6], in [4, 5]
  const std::vector<bool> fixed = {true, false, false};
  const at::Tensor x = at::randn({2, 4, 5}, kDouble);
  at::Tensor means = TestMeans(2, 4, sizes);
  // Output coordinates: integers (the contract) and near-integers, which
  // round to the nearest row; rows 0, 4 and 5 stay empty.
  const at::Tensor rows = at::tensor({1.0, 2.04, 2.97, 1.96, 3.0, 2.0, 1.02, 2.98}, kDouble);
  means.select(2, 0).copy_(rows.view({2, 4}));
  const at::Tensor sigmas = at::rand({2, 4, 3}, kDouble) + 0.3;
  const at::Tensor values = at::randn({2, 4}, kDouble);
  const std::vector<int64_t> region = {3, 3, 3};
  const at::Tensor points = sample_tuples(means, sizes, 3, 4, region, /*seed=*/5);
  const at::Tensor y = SampledSparseProduct(x, means, sigmas, values, {6}, sizes,
                                            Options(3, 4, region, 0, 0), fixed, 5);
  const at::Tensor expect = LoopReference(x, means, sigmas, values, points, sizes, 1, 0, fixed);
  // The fixed dimension's distances (up to 0.04^2 / 1e-12) cancel in
  // double: about 1e-16 of them remains.
  EXPECT_TRUE(at::allclose(y, expect, 1e-6, 1e-8)) << y << "\n" << expect;
  for (int64_t row : {0, 4, 5}) {
    EXPECT_EQ(y.select(1, row).abs().max().item<double>(), 0.0) << "row " << row;
  }
  // Row 3 (2.97, 3.0 and 2.98 rounded) is used in both batch rows.
  EXPECT_GT(y.select(1, 3).abs().min().item<double>(), 0.0);
  // No gradient reaches the variances of a fixed dimension; the others get one.
  const at::Tensor s = sigmas.clone().requires_grad_();
  SampledSparseProduct(x, means, s, values, {6}, sizes, Options(3, 4, region, 0, 0), fixed, 5)
      .pow(2)
      .sum()
      .backward();
  EXPECT_EQ(s.grad().select(2, 0).abs().max().item<double>(), 0.0);
  EXPECT_GT(s.grad().slice(2, 1).abs().min().item<double>(), 0.0);
}

TEST(SampledSparseProduct, GradientsMatchFiniteDifferences) {
  // Sampling fixed by seed; means away from integers and half-integers so
  // that no finite-difference step changes the sampled points.
  at::manual_seed(4);
  const std::vector<int64_t> sizes = {5, 6};
  const int64_t k = 3;
  for (int64_t mb : {2, 1}) {
    const at::Tensor x = at::randn({2, 6}, kDouble);
    const at::Tensor means = at::randint(0, 4, {mb, k, 2}, kDouble) + 0.1 +
                             at::rand({mb, k, 2}, kDouble) * 0.3;
    const at::Tensor sigmas = at::rand({mb, k, 2}, kDouble) + 0.4;
    const at::Tensor values = at::randn({mb, k}, kDouble);
    auto f = [&](const std::vector<at::Tensor>& in) {
      return SampledSparseProduct(in[0], in[1], in[2], in[3], {5}, sizes,
                                  Options(2, 3, {3, 3}, 0, 0), {}, /*seed=*/9);
    };
    for (size_t wrt = 0; wrt < 4; ++wrt) {
      EXPECT_LT(testing::max_gradient_error(f, {x, means, sigmas, values}, wrt), 1e-6)
          << "means batch " << mb << " input " << wrt;
    }
  }
}

TEST(SampledSparseProduct, BadInputNamesTheArgument) {
  const at::Tensor means = at::rand({2, 5, 2}, kDouble) * 4;
  EXPECT_ERROR_CONTAINS(
      SampledSparseProduct(at::randn({2, 5}, kDouble), means, at::ones({2, 5, 2}, kDouble),
                           at::ones({2, 5}, kDouble), {5}, {5, 5}, SamplingOptions(),
                           {true, false, false}, 0),
      "SampledSparseProduct: fixed needs one flag per index dimension (2), got 3");
  EXPECT_ERROR_CONTAINS(
      SampledSparseProduct(at::randn({1, 5}, kDouble), means, at::ones({2, 5, 2}, kDouble),
                           at::ones({2, 5}, kDouble), {5}, {5, 5}, SamplingOptions(), {}, 0),
      "means need x's batch (1) or 1 (one sample set for every row), got 2");
}

// A layer's options as SamplingFrom reads them.
struct FakeLayerOptions {
  TORCH_ARG(int64_t, k) = 6;
  TORCH_ARG(int64_t, num_global) = 4;
  TORCH_ARG(int64_t, num_local) = 4;
  TORCH_ARG(std::vector<int64_t>, region);
  TORCH_ARG(int64_t, chunk_size) = 0;
  TORCH_ARG(double, tolerance) = 1e-6;
  TORCH_ARG(double, sigma_scale) = 0.1;
  TORCH_ARG(double, min_sigma) = 0;
};

TEST(SamplingFrom, PassesTheSettingsThroughAndDefaultsTheRegion) {
  const SamplingOptions s = SamplingFrom(
      "Op",
      FakeLayerOptions().num_global(2).num_local(7).region({1, 2, 3}).chunk_size(3).tolerance(0.25),
      /*rank=*/3);
  EXPECT_EQ(s.num_global, 2);
  EXPECT_EQ(s.num_local, 7);
  EXPECT_EQ(s.region, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(s.chunk_size, 3);
  EXPECT_EQ(s.tolerance, 0.25);
  const SamplingOptions d = SamplingFrom("Op", FakeLayerOptions(), /*rank=*/5);
  EXPECT_EQ(d.region, (std::vector<int64_t>(5, 4)));
  // The limits themselves are allowed.
  const SamplingOptions edge = SamplingFrom(
      "Op", FakeLayerOptions().num_global(0).num_local(0).chunk_size(6).tolerance(0).min_sigma(0),
      2);
  EXPECT_EQ(edge.chunk_size, 6);
  EXPECT_EQ(edge.tolerance, 0.0);
}

TEST(SamplingFrom, BadSettingsNameTheLayerAndTheValue) {
  const FakeLayerOptions o;
  EXPECT_ERROR_CONTAINS(SamplingFrom("MyLayer", FakeLayerOptions(o).num_global(-1), 2),
                        "MyLayer: num_global and num_local must be >= 0, got -1 and 4");
  EXPECT_ERROR_CONTAINS(SamplingFrom("MyLayer", FakeLayerOptions(o).num_local(-2), 2),
                        "num_global and num_local must be >= 0, got 4 and -2");
  EXPECT_ERROR_CONTAINS(SamplingFrom("MyLayer", FakeLayerOptions(o).chunk_size(4), 2),
                        "MyLayer: chunk_size must be 0 or divide k = 6, got 4");
  EXPECT_ERROR_CONTAINS(SamplingFrom("MyLayer", FakeLayerOptions(o).chunk_size(-3), 2),
                        "chunk_size must be 0 or divide k = 6, got -3");
  EXPECT_ERROR_CONTAINS(SamplingFrom("MyLayer", FakeLayerOptions(o).tolerance(1), 2),
                        "MyLayer: tolerance must be in [0, 1), got 1");
  EXPECT_ERROR_CONTAINS(SamplingFrom("MyLayer", FakeLayerOptions(o).tolerance(-0.5), 2),
                        "tolerance must be in [0, 1), got -0.5");
  EXPECT_ERROR_CONTAINS(SamplingFrom("MyLayer", FakeLayerOptions(o).sigma_scale(0), 2),
                        "MyLayer: sigma_scale must be > 0, got 0");
  EXPECT_ERROR_CONTAINS(SamplingFrom("MyLayer", FakeLayerOptions(o).min_sigma(-1), 2),
                        "MyLayer: min_sigma must be >= 0, got -1");
  EXPECT_ERROR_CONTAINS(SamplingFrom("MyLayer", FakeLayerOptions(o).region({3, 3}), 3),
                        "MyLayer: region needs one entry per index dimension (3), got 2 entries");
}

}  // namespace
}  // namespace sparse_hyper
}  // namespace indexgrad
