// Tests of SparseLayer: the training-mode output against an independent loop
// implementation of the paper's formula (no extra samples: only the 2^r
// neighbours), finite-difference gradients of the whole layer with the
// sampling fixed by seed, evaluation mode, bad input.
#include "sparse_hyper/sparse_layer.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cmath>
#include <map>
#include <vector>

#include "kernels/testing/expect_error.h"
#include "kernels/testing/gradcheck.h"
#include "sparse_hyper/sampled_sparse.h"

namespace indexgrad {
namespace sparse_hyper {
namespace {

const auto kDouble = at::TensorOptions().dtype(at::kDouble);

// y = W x with W from Algorithm 1, neighbours only, one chunk, by loops.
at::Tensor loop_reference(SparseLayer& layer, const at::Tensor& x) {
  const at::Tensor mu = layer->means().detach();
  const at::Tensor sigma = layer->sigmas().detach();
  const at::Tensor v = layer->values.detach();
  const int64_t k = mu.size(0), n_out = layer->sizes()[0],
                n_in = layer->sizes()[1];
  // The distinct neighbour points of all tuples, in first-seen order.
  std::vector<std::pair<int64_t, int64_t>> points;
  std::map<std::pair<int64_t, int64_t>, int> seen;
  for (int64_t i = 0; i < k; ++i) {
    const double a = mu[i][0].item<double>(), b = mu[i][1].item<double>();
    for (int64_t row : {int64_t(std::floor(a)), int64_t(std::ceil(a))}) {
      for (int64_t col : {int64_t(std::floor(b)), int64_t(std::ceil(b))}) {
        if (seen.emplace(std::make_pair(row, col), 1).second) {
          points.push_back({row, col});
        }
      }
    }
  }
  at::Tensor w = at::zeros({n_out, n_in}, kDouble);
  for (int64_t i = 0; i < k; ++i) {
    std::vector<double> p;
    double total = 0;
    for (const auto& [row, col] : points) {
      const double dr = row - mu[i][0].item<double>();
      const double dc = col - mu[i][1].item<double>();
      p.push_back(std::exp(-0.5 * (dr * dr / sigma[i][0].item<double>() +
                                   dc * dc / sigma[i][1].item<double>())));
      total += p.back();
    }
    for (size_t q = 0; q < points.size(); ++q) {
      w[points[q].first][points[q].second] += v[i].item<double>() * p[q] / total;
    }
  }
  return at::matmul(x, w.t());
}

SparseLayer small_layer(double tolerance) {
  at::manual_seed(0);
  SparseLayer layer(SparseLayerOptions({5}, {6}, 4)
                        .num_global(0)
                        .num_local(0)
                        .sigma_scale(0.3)
                        .tolerance(tolerance));
  layer->to(at::kDouble);
  at::NoGradGuard g;
  layer->values.copy_(at::randn({4}, kDouble));
  layer->raw_sigmas.copy_(at::randn({4}, kDouble));
  return layer;
}

TEST(SparseLayer, NeighboursOnlyMatchesLoopReference) {
  for (double tol : {0.0, 1e-9}) {
    SparseLayer layer = small_layer(tol);
    const at::Tensor x = at::randn({3, 6}, kDouble);
    const at::Tensor y = layer->forward(x);
    EXPECT_TRUE(at::allclose(y, loop_reference(layer, x), 1e-8, 1e-10))
        << "tolerance " << tol;
  }
}

TEST(SparseLayer, GradientsMatchFiniteDifferences) {
  // Sampling fixed by seed: the step counter is reset before every call, so
  // each evaluation uses the same integer tuples (global + local included).
  SparseLayer layer(SparseLayerOptions({4}, {5}, 3).sigma_scale(0.3).seed(2));
  layer->to(at::kDouble);
  at::manual_seed(3);
  const at::Tensor x = at::randn({2, 5}, kDouble);
  const at::Tensor w = at::randn({2, 4}, kDouble);
  std::vector<at::Tensor> params = {layer->raw_means, layer->raw_sigmas,
                                    layer->values};
  {
    at::NoGradGuard g;
    layer->raw_sigmas.copy_(at::randn({3}, kDouble));
    layer->values.copy_(at::randn({3}, kDouble));
  }
  auto loss = [&] {
    layer->step.zero_();
    return (layer->forward(x) * w).sum();
  };
  layer->zero_grad();
  loss().backward();
  for (size_t wrt = 0; wrt < params.size(); ++wrt) {
    const at::Tensor analytic = params[wrt].grad().clone();
    at::Tensor numeric = at::zeros_like(analytic);
    const double eps = 1e-6;
    for (int64_t i = 0; i < params[wrt].numel(); ++i) {
      at::NoGradGuard g;
      const double saved = params[wrt].view(-1)[i].item<double>();
      params[wrt].view(-1)[i] = saved + eps;
      const double plus = loss().item<double>();
      params[wrt].view(-1)[i] = saved - eps;
      const double minus = loss().item<double>();
      params[wrt].view(-1)[i] = saved;
      numeric.view(-1)[i] = (plus - minus) / (2 * eps);
    }
    EXPECT_TRUE(at::allclose(analytic, numeric, 1e-5, 1e-7))
        << "parameter " << wrt << "\n" << analytic << "\n" << numeric;
    EXPECT_GT(analytic.abs().max().item<double>(), 0) << "parameter " << wrt;
  }
}

TEST(SparseLayer, MovesToCudaAndAgreesWithTheCpu) {
  // The same layer and seed on both devices: the counter-based sampler draws
  // the same tuples, so outputs and gradients agree within rounding (the
  // CUDA sums add in another order). Paper normalisation and chunk 1.
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (int64_t chunk : {0, 1}) {
    auto make = [&] {
      SparseLayer layer(SparseLayerOptions({64}, {64}, 64).chunk_size(chunk).seed(5));
      layer->to(at::kDouble);
      return layer;
    };
    SparseLayer cpu = make(), gpu = make();
    gpu->to(torch::kCUDA);
    at::manual_seed(7);
    const at::Tensor x = at::randn({8, 64}, kDouble);
    const at::Tensor y_cpu = cpu->forward(x), y_gpu = gpu->forward(x.cuda());
    EXPECT_TRUE(at::allclose(y_gpu.cpu(), y_cpu, 1e-9, 1e-11)) << chunk;
    (y_cpu * y_cpu).sum().backward();
    (y_gpu * y_gpu).sum().backward();
    EXPECT_TRUE(at::allclose(gpu->raw_means.grad().cpu(), cpu->raw_means.grad(), 1e-8, 1e-10));
    EXPECT_TRUE(at::allclose(gpu->raw_sigmas.grad().cpu(), cpu->raw_sigmas.grad(), 1e-8, 1e-10));
    EXPECT_TRUE(at::allclose(gpu->values.grad().cpu(), cpu->values.grad(), 1e-8, 1e-10));
  }
}

TEST(SparseLayer, EvalModeUsesRoundedMeans) {
  SparseLayer layer(SparseLayerOptions({4}, {4}, 4).learn_values(false));
  {
    at::NoGradGuard g;
    // Means (i, i) + 0.3 round to the diagonal; sigmoid^-1 of (i+0.3)/3.
    const at::Tensor target = (at::arange(4, at::kFloat) + 0.3).clamp_max(2.99) / 3;
    layer->raw_means.copy_(at::log(target / (1 - target)).unsqueeze(1).expand({4, 2}));
  }
  layer->eval();
  EXPECT_TRUE(layer->rounded_tuples().select(1, 0).equal(at::arange(4, at::kLong)));
  EXPECT_TRUE(at::allclose(layer->dense_rounded(), at::eye(4)));
  const at::Tensor x = at::randn({7, 4});
  EXPECT_TRUE(at::allclose(layer->forward(x), x));
  // Half rounds up: 1.5 -> 2.
  {
    at::NoGradGuard g;
    const double t = 1.5 / 3;
    layer->raw_means.fill_(std::log(t / (1 - t)));
  }
  EXPECT_EQ(layer->rounded_tuples()[0][0].item<int64_t>(), 2);
}

TEST(SparseLayer, WidenDoubledTuplesRaisesTheLaterOfEachPairOnly) {
  SparseLayer layer(SparseLayerOptions({4}, {4}, 4).learn_values(false));
  {
    at::NoGradGuard g;
    // Means (row, column): tuples 0 and 2 round to (1, 1), tuple 3 to (2, 2)
    // like tuple 1: two pairs.
    const at::Tensor m = at::tensor({1.1f, 1.2f, 2.0f, 2.0f, 0.9f, 0.8f, 2.3f, 1.7f}).view({4, 2});
    const at::Tensor t = m / 3;
    layer->raw_means.copy_(at::log(t / (1 - t)));
  }
  const at::Tensor before = layer->sigmas().detach().clone();
  EXPECT_EQ(layer->WidenDoubledTuples(2.5), 2);
  EXPECT_TRUE(layer->extra_floor.equal(at::tensor({0.f, 0.f, 2.5f, 2.5f})));
  EXPECT_TRUE(at::allclose(layer->sigmas().detach() - before,
                           at::tensor({0.f, 0.f, 2.5f, 2.5f}).unsqueeze(1).expand({4, 2})));
  // Still widened: not again.
  EXPECT_EQ(layer->WidenDoubledTuples(2.5), 0);
  layer->LowerExtraFloor(1.0);
  EXPECT_TRUE(at::allclose(layer->extra_floor, at::tensor({0.f, 0.f, 1.5f, 1.5f})));
  layer->LowerExtraFloor(2.0);
  EXPECT_TRUE(layer->extra_floor.equal(at::zeros({4})));
  EXPECT_EQ(layer->WidenDoubledTuples(1.0), 2);
  EXPECT_ERROR_CONTAINS(layer->WidenDoubledTuples(0), "extra must be > 0 and finite, got 0");
  EXPECT_ERROR_CONTAINS(layer->LowerExtraFloor(-1), "amount must be >= 0 and finite, got -1");
}

TEST(SparseLayer, SamplesChangeEveryStep) {
  SparseLayer layer(SparseLayerOptions({16}, {16}, 16));
  const at::Tensor x = at::randn({2, 16});
  const at::Tensor a = layer->forward(x), b = layer->forward(x);
  EXPECT_FALSE(at::allclose(a, b));
  EXPECT_EQ(layer->step.item<int64_t>(), 2);
}

TEST(SparseLayer, ClampMeansStopsAtTheMarginAndKeepsTheRoundedTuples) {
  SparseLayer layer(SparseLayerOptions({9}, {5}, 3));
  layer->to(at::kDouble);
  {
    at::NoGradGuard g;
    layer->raw_means.copy_(at::tensor({30.0, -40.0, 0.3, -0.2, -3.0, 25.0}, kDouble).view({3, 2}));
  }
  const at::Tensor before = layer->rounded_tuples();
  layer->ClampMeans(0.25);
  // Rows: (8, 0) pushed in to [0.25, 0.375) cells from the edges, (4.59..,
  // 1.80..) untouched, (0.38.., 4) with its second component pushed in.
  const at::Tensor means = layer->means().detach();
  const at::Tensor untouched =
      at::tensor({8 / (1 + std::exp(-0.3)), 4 / (1 + std::exp(0.2)), 8 / (1 + std::exp(3.0))},
                 kDouble);
  EXPECT_TRUE(at::allclose(at::stack({means[1][0], means[1][1], means[2][0]}), untouched, 1e-12,
                           1e-12))
      << means;
  const at::Tensor from_edge = at::stack({8 - means[0][0], means[0][1], 4 - means[2][1]});
  EXPECT_TRUE((from_edge >= 0.25 - 1e-12).all().item<bool>()) << means;
  EXPECT_TRUE((from_edge < 0.375).all().item<bool>()) << means;
  EXPECT_TRUE(at::equal(layer->rounded_tuples(), before));
  // Two tuples pushed onto one edge do not coincide.
  {
    at::NoGradGuard g;
    layer->raw_means.copy_(at::tensor({30.0, 0.0, 30.0, 0.0, 0.0, 0.0}, kDouble).view({3, 2}));
  }
  layer->ClampMeans(0.25);
  EXPECT_NE(layer->means()[0][0].item<double>(), layer->means()[1][0].item<double>());
  EXPECT_EQ(layer->means()[0][1].item<double>(), layer->means()[1][1].item<double>());  // inside
  EXPECT_ERROR_CONTAINS(layer->ClampMeans(0.5), "margin must be in (0, 0.5), got 0.5");
  EXPECT_ERROR_CONTAINS(layer->ClampMeans(0), "margin must be in (0, 0.5), got 0");
}

// shared_samples: one sparse matrix for every row of a call. The rows
// e_1 .. e_n of the identity give W's columns, so the other rows of the
// same call must be x W^T; with a sample set per row they are not. The
// gradient is the sum of the rows' gradients, each row alone in a batch-1
// call at the same step (the same samples).
TEST(SparseLayer, SharedSamplesApplyOneMatrixToEveryRow) {
  for (bool shared : {true, false}) {
    SparseLayer layer(SparseLayerOptions({6}, {6}, 6).shared_samples(shared).seed(4));
    layer->to(at::kDouble);
    at::manual_seed(5);
    const at::Tensor rows = at::randn({3, 6}, kDouble);
    const at::Tensor x = at::cat({at::eye(6, kDouble), rows});
    const at::Tensor y = layer->forward(x).detach();
    const at::Tensor w_t = y.slice(0, 0, 6);  // row j = W e_j
    EXPECT_EQ(at::allclose(y.slice(0, 6), at::matmul(rows, w_t), 1e-12, 1e-12), shared)
        << "shared_samples " << shared;
  }
  SparseLayer layer(SparseLayerOptions({5}, {5}, 5).shared_samples(true).sigma_scale(0.3).seed(6));
  layer->to(at::kDouble);
  at::manual_seed(7);
  const at::Tensor x = at::randn({3, 5}, kDouble), w = at::randn({3, 5}, kDouble);
  layer->zero_grad();
  (layer->forward(x) * w).sum().backward();
  const at::Tensor together = layer->raw_means.grad().clone();
  at::Tensor apart = at::zeros_like(together);
  for (int64_t b = 0; b < 3; ++b) {
    layer->zero_grad();
    layer->step.zero_();
    (layer->forward(x.slice(0, b, b + 1)) * w.slice(0, b, b + 1)).sum().backward();
    apart += layer->raw_means.grad();
  }
  EXPECT_TRUE(at::allclose(together, apart, 1e-10, 1e-12)) << together << "\n" << apart;
  EXPECT_GT(together.abs().max().item<double>(), 0);
  EXPECT_ERROR_CONTAINS(
      SampledSparseProduct(at::randn({3, 5}), at::rand({2, 5, 2}) * 4, at::ones({2, 5, 2}),
                           at::ones({2, 5}), {5}, {5, 5}, SamplingOptions(), {}, 0),
      "means need x's batch (3) or 1 (one sample set for every row), got 2");
}

TEST(SparseLayer, BadInputNamesTheArgument) {
  EXPECT_ERROR_CONTAINS(SparseLayer(SparseLayerOptions({4}, {0}, 3)),
                        "out_shape and in_shape must be positive");
  EXPECT_ERROR_CONTAINS(SparseLayer(SparseLayerOptions({4}, {4}, 0)),
                        "k must be >= 1, got 0");
  EXPECT_ERROR_CONTAINS(
      SparseLayer(SparseLayerOptions({4}, {4}, 6).chunk_size(4)),
      "chunk_size must be 0 or divide k = 6");
  EXPECT_ERROR_CONTAINS(
      SparseLayer(SparseLayerOptions({4}, {4}, 6).region({2})),
      "region needs one entry per index dimension (2)");
  SparseLayer layer(SparseLayerOptions({4}, {5}, 3));
  EXPECT_ERROR_CONTAINS(layer->forward(at::randn({2, 4})),
                        "x must be [batch, 5], got [2, 4]");
}

}  // namespace
}  // namespace sparse_hyper
}  // namespace indexgrad
