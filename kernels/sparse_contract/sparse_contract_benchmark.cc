// Benchmark: sparse_contract forward and forward+backward against torch's own
// sparse COO matmul (at::mm / torch.sparse.mm on an uncoalesced COO tensor, as
// when the indices change every step, so each call coalesces) on the same
// data: a batch of 16 random [n, n] matrices (n = sqrt(nnz), at least 64),
// nnz entries in all, each times its own vector; for torch, the batch is one
// block-diagonal [16 n, 16 n] COO matrix (the paper's appendix A.2).
//
// bazel run //kernels/sparse_contract:sparse_contract_benchmark
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>
#include <torch/autograd.h>

#include "kernels/sparse_contract/sparse_contract.h"
#include "kernels/testing/benchmark_main.h"

namespace indexgrad {
namespace {

constexpr int64_t kBatch = 16;

struct Problem {
  at::Tensor indices;  // [batch, nnz / batch, 2]
  at::Tensor values;   // [batch, nnz / batch]
  at::Tensor x;        // [batch, n]
  int64_t n;
};

Problem make_problem(int64_t nnz) {
  at::manual_seed(0);
  const int64_t per = nnz / kBatch;
  const int64_t n = std::max<int64_t>(64, static_cast<int64_t>(std::sqrt(nnz)));
  Problem p;
  p.n = n;
  p.indices = at::randint(n, {kBatch, per, 2}, at::kLong);
  p.values = at::randn({kBatch, per});
  p.x = at::randn({kBatch, n});
  return p;
}

// Bytes touched per call: indices (2 x int64) + value (float) read per entry,
// one x element read and one y element read-modify-written per entry.
int64_t bytes_per_entry() { return 2 * 8 + 4 + 4 + 2 * 4; }

void BM_SparseContractForward(benchmark::State& state) {
  const Problem p = make_problem(state.range(0));
  at::NoGradGuard no_grad;
  for (auto _ : state) {
    benchmark::DoNotOptimize(sparse_contract(p.indices, p.values, {p.n}, p.x));
  }
  const int64_t entries = p.values.numel();
  state.SetItemsProcessed(state.iterations() * entries);
  state.SetBytesProcessed(state.iterations() * entries * bytes_per_entry());
  state.counters["n"] = p.n;
  state.counters["nnz"] = entries;
}

// The batch as one block-diagonal COO matrix [batch * n, batch * n]: its
// [2, nnz] positions.
at::Tensor block_diagonal_positions(const Problem& p) {
  const at::Tensor offset =
      (at::arange(kBatch, at::kLong) * p.n).view({kBatch, 1});
  const at::Tensor rows = (p.indices.select(2, 0) + offset).reshape(-1);
  const at::Tensor cols = (p.indices.select(2, 1) + offset).reshape(-1);
  return at::stack({rows, cols});
}

// Torch COO baseline for the same products: the block-diagonal COO matrix
// times the stacked x, as at::mm on sparse COO.
void BM_TorchCooForward(benchmark::State& state) {
  const Problem p = make_problem(state.range(0));
  const int64_t per = p.values.size(1);
  const at::Tensor coo =
      at::sparse_coo_tensor(block_diagonal_positions(p), p.values.reshape(-1),
                            {kBatch * p.n, kBatch * p.n});
  const at::Tensor x = p.x.reshape({kBatch * p.n, 1});
  at::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(at::mm(coo, x));
  state.SetItemsProcessed(state.iterations() * kBatch * per);
  state.SetBytesProcessed(state.iterations() * kBatch * per * bytes_per_entry());
  state.counters["n"] = p.n;
  state.counters["nnz"] = kBatch * per;
}

void BM_SparseContractForwardBackward(benchmark::State& state) {
  const Problem p = make_problem(state.range(0));
  const at::Tensor values = p.values.clone().requires_grad_();
  const at::Tensor x = p.x.clone().requires_grad_();
  for (auto _ : state) {
    sparse_contract(p.indices, values, {p.n}, x).sum().backward();
  }
  const int64_t entries = p.values.numel();
  state.SetItemsProcessed(state.iterations() * entries);
  state.SetBytesProcessed(state.iterations() * entries * 2 * bytes_per_entry());
  state.counters["n"] = p.n;
  state.counters["nnz"] = entries;
}

void BM_TorchCooForwardBackward(benchmark::State& state) {
  const Problem p = make_problem(state.range(0));
  const int64_t per = p.values.size(1);
  const at::Tensor pos = block_diagonal_positions(p);
  const at::Tensor values = p.values.reshape(-1).clone().requires_grad_();
  const at::Tensor x = p.x.reshape({kBatch * p.n, 1}).clone().requires_grad_();
  for (auto _ : state) {
    const at::Tensor coo = at::sparse_coo_tensor(pos, values,
                                                 {kBatch * p.n, kBatch * p.n});
    at::_sparse_mm(coo, x).sum().backward();  // torch.sparse.mm
  }
  state.SetItemsProcessed(state.iterations() * kBatch * per);
  state.SetBytesProcessed(state.iterations() * kBatch * per * 2 * bytes_per_entry());
  state.counters["n"] = p.n;
  state.counters["nnz"] = kBatch * per;
}

// One matrix applied to every row (batch-1 indices and values, as
// SparseLayer's evaluation and its shared_samples use it): nnz entries times
// 64 rows, forward + backward; `copied` passes the matrix expanded to every
// row instead (how the layers called it before: the op copies the expanded
// entries, autograd sums the rows' value gradients). Items are products
// (entries x rows); bytes per product and pass: x read, y read and written
// (4 + 8), plus each entry's indices and value once (20).
constexpr int64_t kRows = 64;

void BM_SparseContractOneMatrix(benchmark::State& state, bool copied) {
  at::manual_seed(0);
  const int64_t nnz = state.range(0);
  const int64_t n = std::max<int64_t>(64, static_cast<int64_t>(std::sqrt(nnz)));
  const at::Tensor indices = at::randint(n, {1, nnz, 2}, at::kLong);
  const at::Tensor values = at::randn({1, nnz}).requires_grad_();
  const at::Tensor x = at::randn({kRows, n}).requires_grad_();
  for (auto _ : state) {
    const at::Tensor i = copied ? indices.expand({kRows, nnz, 2}) : indices;
    const at::Tensor v = copied ? values.expand({kRows, nnz}) : values;
    sparse_contract(i, v, {n}, x).sum().backward();
  }
  const int64_t products = nnz * kRows;
  state.SetItemsProcessed(state.iterations() * products);
  state.SetBytesProcessed(state.iterations() * 2 * (products * 12 + nnz * 20));
  state.counters["n"] = n;
  state.counters["nnz"] = nnz;
}
BENCHMARK_CAPTURE(BM_SparseContractOneMatrix, one_matrix, false)
    ->RangeMultiplier(10)->Range(1000, 1000000)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SparseContractOneMatrix, copied_per_row, true)
    ->RangeMultiplier(10)->Range(1000, 1000000)->Unit(benchmark::kMillisecond);

// The same on a GPU (skipped without one): bytes moved against the card's.
void BM_SparseContractCuda(benchmark::State& state, bool backward) {
  const Problem p = make_problem(state.range(0));
  const at::Tensor indices = p.indices.cuda();
  const at::Tensor values = p.values.cuda().requires_grad_(backward);
  const at::Tensor x = p.x.cuda().requires_grad_(backward);
  for (auto _ : state) {
    if (backward) {
      sparse_contract(indices, values, {p.n}, x).sum().backward();
    } else {
      at::NoGradGuard no_grad;
      benchmark::DoNotOptimize(sparse_contract(indices, values, {p.n}, x));
    }
    cuda_bench::Sync();
  }
  const int64_t entries = p.values.numel();
  state.SetItemsProcessed(state.iterations() * entries);
  cuda_bench::Bandwidth(state, double(entries) * (backward ? 2 : 1) * bytes_per_entry());
  state.counters["nnz"] = entries;
}
const cuda_bench::RegisterIfCuda kCudaCases([] {
  benchmark::RegisterBenchmark("BM_SparseContractCuda/forward", BM_SparseContractCuda, false)
      ->RangeMultiplier(10)->Range(100000, 100000000)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("BM_SparseContractCuda/forward_backward", BM_SparseContractCuda,
                               true)
      ->RangeMultiplier(10)->Range(100000, 100000000)->Unit(benchmark::kMillisecond)->UseRealTime();
});

#define NNZ_RANGE RangeMultiplier(10)->Range(1000, 10000000)->Unit(benchmark::kMillisecond)
BENCHMARK(BM_SparseContractForward)->NNZ_RANGE;
BENCHMARK(BM_TorchCooForward)->NNZ_RANGE;
BENCHMARK(BM_SparseContractForwardBackward)->NNZ_RANGE;
BENCHMARK(BM_TorchCooForwardBackward)->NNZ_RANGE;

}  // namespace
}  // namespace indexgrad

INDEXGRAD_BENCHMARK_MAIN();
