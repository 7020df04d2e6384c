// Forward + backward of the differentiable sorts, batch 32, keys ~ N(0, 1)
// sorting themselves (values = keys, so the gradient reaches the keys
// through both the permutation and the values): the quicksort SortLayer
// (a = 2 and a = n random candidates per bucket, C = 10), NeuralSort,
// SoftSort (tau = 1), and torch's exact sort (at::sort + gather) as the
// floor.
//
//   bazel run //benchmarks:sort_benchmark
//   # peak memory per size: one process per benchmark
//   bazel run //benchmarks:sort_benchmark -- --benchmark_filter='quicksort_a2/1024$'
//
// Counters: n; maxrss_MB = the process's peak resident memory so far (one
// size per process to read it per size); items = keys sorted per second.
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>

#include <memory>

#include "baselines/relaxed_sort.h"
#include "kernels/testing/benchmark_main.h"
#include "sparse_hyper/sort_layer.h"

namespace indexgrad {
namespace {

constexpr int64_t kBatch = 32;

void Run(benchmark::State& state, sparse_hyper::SortModuleImpl* sorter) {
  const int64_t n = state.range(0);
  at::manual_seed(0);
  const at::Tensor keys = at::randn({kBatch, n}).requires_grad_();
  const at::Tensor w = at::randn({kBatch, n, 1});
  for (auto _ : state) {
    keys.mutable_grad() = at::Tensor();
    const auto out = sorter->forward(keys, keys.unsqueeze(2));
    (out.output * w).sum().backward();
  }
  state.SetItemsProcessed(state.iterations() * kBatch * n);
  state.counters["n"] = n;
  state.counters["maxrss_MB"] = MaxRssMb();
}

void BM_QuickSort(benchmark::State& state, int64_t num_samples) {
  const int64_t a = num_samples < 0 ? state.range(0) : num_samples;
  sparse_hyper::SortLayer sorter(sparse_hyper::SortLayerOptions().num_samples(a));
  Run(state, sorter.get());
}

void BM_NeuralSort(benchmark::State& state) {
  baselines::NeuralSort sorter(1.0);
  Run(state, sorter.get());
}

void BM_SoftSort(benchmark::State& state) {
  baselines::SoftSort sorter(1.0);
  Run(state, sorter.get());
}

void BM_TorchSort(benchmark::State& state) {
  const int64_t n = state.range(0);
  at::manual_seed(0);
  const at::Tensor keys = at::randn({kBatch, n}).requires_grad_();
  const at::Tensor w = at::randn({kBatch, n});
  for (auto _ : state) {
    keys.mutable_grad() = at::Tensor();
    (std::get<0>(keys.sort(1)) * w).sum().backward();
  }
  state.SetItemsProcessed(state.iterations() * kBatch * n);
  state.counters["n"] = n;
  state.counters["maxrss_MB"] = MaxRssMb();
}

// n = 4, 16, 64, 128 (the authors' quicksort's last comparable size), 256,
// then x4 up to `max_n`.
void Sizes(benchmark::internal::Benchmark* b, int64_t max_n) {
  for (int64_t n : {4, 16, 64, 128, 256, 1024, 4096, 16384, 65536}) {
    if (n <= max_n) b->Arg(n);
  }
  b->Unit(benchmark::kMillisecond);
}

void UpTo1024(benchmark::internal::Benchmark* b) { Sizes(b, 1024); }
void UpTo65536(benchmark::internal::Benchmark* b) { Sizes(b, 65536); }

// a = n and the dense relaxations are quadratic: up to 1,024.
BENCHMARK_CAPTURE(BM_QuickSort, quicksort_a2, 2)->Apply(UpTo65536);
BENCHMARK_CAPTURE(BM_QuickSort, quicksort_an, -1)->Apply(UpTo1024);
BENCHMARK(BM_NeuralSort)->Apply(UpTo1024);
BENCHMARK(BM_SoftSort)->Apply(UpTo1024);
BENCHMARK(BM_TorchSort)->Apply(UpTo65536);

// The quicksort (a = 2) on a GPU, skipped without one.
void BM_QuickSortCuda(benchmark::State& state) {
  const int64_t n = state.range(0);
  at::manual_seed(0);
  sparse_hyper::SortLayer sorter(sparse_hyper::SortLayerOptions().num_samples(2));
  const at::Tensor keys = at::randn({kBatch, n}).cuda().requires_grad_();
  const at::Tensor w = at::randn({kBatch, n, 1}).cuda();
  for (auto _ : state) {
    keys.mutable_grad() = at::Tensor();
    const auto out = sorter->forward(keys, keys.unsqueeze(2));
    (out.output * w).sum().backward();
    cuda_bench::Sync();
  }
  state.SetItemsProcessed(state.iterations() * kBatch * n);
  state.counters["n"] = n;
}
const cuda_bench::RegisterIfCuda kCudaCases([] {
  benchmark::RegisterBenchmark("BM_QuickSortCuda", BM_QuickSortCuda)
      ->RangeMultiplier(4)->Range(16, 65536)->Unit(benchmark::kMillisecond)->UseRealTime();
});

}  // namespace
}  // namespace indexgrad

INDEXGRAD_BENCHMARK_MAIN();
