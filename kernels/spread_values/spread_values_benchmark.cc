// Benchmark of spread_values forward + backward in the identity layout of
// Bloem et al. 2018, section 3.1 at initialisation: n tuples spread over an
// n x n matrix, batch 64, 4 global + 4 local samples, region 4, variances
// softplus(2) * n * 0.1 + 0.1 cells^2 (sigma_scale 0.1), one chunk per batch
// row (the paper's normalisation). Sparse (tolerance 1e-6) against dense
// (every pair; up to n = 512).
//
// bazel run //kernels/spread_values:spread_values_benchmark
// Counters: n, pairs/s (items: kept + skipped tuple-point pairs of the dense
// problem), maxrss_MB (process peak resident memory so far).
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>
#include <torch/autograd.h>

#include <cmath>

#include "kernels/sample_tuples/sample_tuples.h"
#include "kernels/spread_values/spread_values.h"
#include "kernels/testing/benchmark_main.h"

namespace indexgrad {
namespace {

constexpr int64_t kBatch = 64;

void BM_SpreadValuesIdentity(benchmark::State& state, double tolerance) {
  const int64_t n = state.range(0);
  at::manual_seed(0);
  const at::Tensor means =
      (at::rand({kBatch, n, 2}) * (n - 1)).requires_grad_();
  const double var = std::log1p(std::exp(2.0)) * n * 0.1 + 0.1;
  const at::Tensor sigmas = at::full({kBatch, n, 2}, var).requires_grad_();
  const at::Tensor values = at::ones({kBatch, n}).requires_grad_();
  const at::Tensor points = sample_tuples(means.detach(), {n, n}, 4, 4, {4, 4}, 1);
  for (auto _ : state) {
    spread_values(points, means, sigmas, values, 0, tolerance).sum().backward();
  }
  const int64_t pairs = kBatch * n * n * points.size(2);
  state.SetItemsProcessed(state.iterations() * pairs);
  state.counters["n"] = n;
  state.counters["maxrss_MB"] = MaxRssMb();
}

// The attention layout (sparse_hyper/glimpse.h): one 32 x 32 glimpse on a
// 100 x 100 image per batch row (batch 32), 4 + 32 local (region 20) + 16
// global points per tuple, variance 21.4 px^2, each tuple its own chunk.
void BM_SpreadValuesGlimpse(benchmark::State& state) {
  const int64_t k = 1024, side = 100, batch = 32;
  at::manual_seed(0);
  const at::Tensor means = (at::rand({batch, k, 2}) * (side - 1)).requires_grad_();
  const double var = std::log1p(std::exp(2.0)) * side * 0.1 + 0.1;
  const at::Tensor sigmas = at::full({batch, k, 2}, var).requires_grad_();
  const at::Tensor values = at::ones({batch, k}).requires_grad_();
  const at::Tensor points = sample_tuples(means.detach(), {side, side}, 16, 32, {20, 20}, 1);
  for (auto _ : state) {
    spread_values(points, means, sigmas, values, 1, 1e-6).sum().backward();
  }
  state.SetItemsProcessed(state.iterations() * batch * k * points.size(2));
  state.counters["points"] = double(batch * k * points.size(2));
}
BENCHMARK(BM_SpreadValuesGlimpse)->Unit(benchmark::kMillisecond);

BENCHMARK_CAPTURE(BM_SpreadValuesIdentity, sparse, 1e-6)
    ->RangeMultiplier(2)->Range(16, 8192)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SpreadValuesIdentity, dense, 0.0)
    ->RangeMultiplier(2)->Range(16, 512)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace indexgrad

INDEXGRAD_BENCHMARK_MAIN();
