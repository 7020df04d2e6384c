// Forward + backward of the sampled sparse layer in the identity setting of
// Bloem et al. 2018, section 3.1, at initialisation (means uniform, the
// widest variances of a run): n x n, k = n tuples, batch 64, 4 global + 4
// local samples, region 4, sigma_scale 0.1, values fixed; the paper's
// normalisation (one chunk per batch row). Sparse proportions (tolerance
// 1e-6) against dense (every tuple-point pair, up to n = 1024), the
// authors' chunk_size=1 mode, and one sample set shared by the batch.
//
//   bazel run //benchmarks:identity_layer_benchmark
//   # peak memory per size: one process per benchmark
//   bazel run //benchmarks:identity_layer_benchmark -- --benchmark_filter='sparse/4096$'
//
// Counters: n; maxrss_MB = the process's peak resident memory so far (run one
// size per process to read it per size); items = samples (tuple-point
// entries of W) per second.
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>

#include "sparse_hyper/sparse_layer.h"
#include "kernels/testing/benchmark_main.h"

namespace indexgrad {
namespace {

constexpr int64_t kBatch = 64;

// The layer at initialisation, seeded (then the batch is drawn).
sparse_hyper::SparseLayer IdentityLayer(int64_t n, double tolerance, int64_t chunk_size,
                                        bool shared_samples = false) {
  at::manual_seed(0);
  return sparse_hyper::SparseLayer(sparse_hyper::SparseLayerOptions({n}, {n}, n)
                                       .num_global(4)
                                       .num_local(4)
                                       .region({4, 4})
                                       .learn_values(false)
                                       .tolerance(tolerance)
                                       .chunk_size(chunk_size)
                                       .shared_samples(shared_samples));
}

void BM_IdentityLayer(benchmark::State& state, double tolerance,
                      int64_t chunk_size, bool shared_samples) {
  const int64_t n = state.range(0);
  sparse_hyper::SparseLayer layer = IdentityLayer(n, tolerance, chunk_size, shared_samples);
  const at::Tensor x = at::randn({kBatch, n});
  for (auto _ : state) {
    layer->zero_grad();
    (layer->forward(x) - x).pow(2).mean().backward();
  }
  state.SetItemsProcessed(state.iterations() * kBatch * n * 12);
  state.counters["n"] = n;
  state.counters["maxrss_MB"] = MaxRssMb();
}

BENCHMARK_CAPTURE(BM_IdentityLayer, sparse, 1e-6, 0, false)
    ->RangeMultiplier(2)->Range(16, 16384)->Unit(benchmark::kMillisecond);
// Each tuple normalised over its own points only (the authors' chunk_size=1
// mode; other maths).
BENCHMARK_CAPTURE(BM_IdentityLayer, chunk1, 0.0, 1, false)
    ->RangeMultiplier(2)->Range(16, 16384)->Unit(benchmark::kMillisecond);
// The paper's normalisation with one sample set for all 64 rows
// (SparseLayerOptions::shared_samples; the same maths per sample set).
BENCHMARK_CAPTURE(BM_IdentityLayer, shared, 1e-6, 0, true)
    ->RangeMultiplier(2)->Range(16, 16384)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_IdentityLayer, dense, 0.0, 0, false)
    ->RangeMultiplier(2)->Range(16, 1024)->Unit(benchmark::kMillisecond);

// The same layer on a GPU (skipped without one), to n = 65,536 (the CUDA
// issue's target: paper normalisation under 1 s there). Whole-row chunks
// take the CUDA spread_values' cell grid.
void BM_IdentityLayerCuda(benchmark::State& state, double tolerance, int64_t chunk_size) {
  const int64_t n = state.range(0);
  sparse_hyper::SparseLayer layer = IdentityLayer(n, tolerance, chunk_size);
  layer->to(torch::kCUDA);
  const at::Tensor x = at::randn({kBatch, n}).cuda();
  for (auto _ : state) {
    layer->zero_grad();
    (layer->forward(x) - x).pow(2).mean().backward();
    cuda_bench::Sync();
  }
  state.SetItemsProcessed(state.iterations() * kBatch * n * 12);
  state.counters["n"] = n;
}
const cuda_bench::RegisterIfCuda kCudaCases([] {
  benchmark::RegisterBenchmark("BM_IdentityLayerCuda/sparse", BM_IdentityLayerCuda, 1e-6, 0)
      ->RangeMultiplier(4)->Range(64, 65536)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("BM_IdentityLayerCuda/chunk1", BM_IdentityLayerCuda, 0.0, 1)
      ->RangeMultiplier(4)->Range(64, 65536)->Unit(benchmark::kMillisecond)->UseRealTime();
});

}  // namespace
}  // namespace indexgrad

INDEXGRAD_BENCHMARK_MAIN();
