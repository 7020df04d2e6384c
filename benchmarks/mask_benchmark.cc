// Mask recovery (Shekhar et al. 2023): the time of one optimisation step of
// each mask operator (mask, oracle MSE, backward, Adam step) at several
// image sizes, and gaussian_splat against the dense K x H x W formula.
//
//   bazel run //benchmarks:mask_benchmark
//
// Steps use the disc target (K = its pixel count) and mask_recovery's
// default settings and learning rates; the MLP operator's decoder is
// untrained (its cost does not depend on the weights). Counters: size
// (H = W), k; items = steps (operators) or rendered pixels (splats).
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>
#include <torch/optim/adam.h>

#include <cmath>
#include <map>
#include <string>

#include "baselines/reinforce_mask.h"
#include "diff_masks/mask_decoder.h"
#include "diff_masks/operator_factory.h"
#include "diff_masks/oracle.h"
#include "kernels/gaussian_splat/gaussian_splat.h"
#include "kernels/testing/benchmark_main.h"

namespace indexgrad {
namespace {

namespace dm = diff_masks;

void BM_MaskStep(benchmark::State& state, const std::string& name) {
  const int64_t size = state.range(0);
  at::manual_seed(0);
  auto oracle = *dm::MaskOracle::Create(dm::TargetKind::kDisc, size, size, 0);
  dm::MaskOperatorFactory factory;
  baselines::AddReinforceMaskOperator(factory);
  dm::OperatorSettings settings;
  if (name == "mlp") settings.decoder = dm::MaskDecoder(dm::MaskDecoderOptions(size, size));
  const std::map<std::string, double> lr = {
      {"gaussian", 0.1}, {"gumbel", 0.05}, {"gumbel_net", 0.01}, {"mlp", 0.003}, {"reinforce", 0.1}};
  auto op = factory.Make(name, size, size, oracle.target_pixels(), settings);
  if (!op.ok()) {
    state.SkipWithError(std::string(op.status().message()).c_str());
    return;
  }
  torch::optim::Adam adam((*op)->parameters(), torch::optim::AdamOptions(lr.at(name)));
  int64_t step = 0;
  for (auto _ : state) {
    (*op)->SetProgress(step++, 2000);
    const at::Tensor mse = oracle.Mse((*op)->Mask());
    adam.zero_grad();
    (*op)->Objective(mse).backward();
    adam.step();
    (*op)->AfterStep();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["size"] = size;
  state.counters["k"] = oracle.target_pixels();
}

BENCHMARK_CAPTURE(BM_MaskStep, gaussian, std::string("gaussian"))
    ->Arg(32)->Arg(64)->Arg(128)->Arg(256)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_MaskStep, gumbel, std::string("gumbel"))
    ->Arg(32)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_MaskStep, gumbel_net, std::string("gumbel_net"))
    ->Arg(32)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_MaskStep, mlp, std::string("mlp"))
    ->Arg(32)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_MaskStep, reinforce, std::string("reinforce"))
    ->Arg(32)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond);

// K = size^2 / 4 points, stddev 1 pixel, forward + backward.
void BM_Splat(benchmark::State& state, bool dense_formula) {
  const int64_t size = state.range(0), k = size * size / 4;
  at::manual_seed(0);
  const at::Tensor points = (at::rand({1, k, 2}) * (size - 1)).requires_grad_();
  const at::Tensor ys = at::arange(size, at::kFloat).view({1, 1, size, 1});
  const at::Tensor xs = at::arange(size, at::kFloat).view({1, 1, 1, size});
  for (auto _ : state) {
    at::Tensor mask;
    if (dense_formula) {  // [1, K, H, W]: every point at every pixel
      const at::Tensor py = points.select(2, 0).view({1, k, 1, 1});
      const at::Tensor px = points.select(2, 1).view({1, k, 1, 1});
      mask = at::exp(-((ys - py).pow(2) + (xs - px).pow(2)) / 2.0).sum(1);
    } else {
      mask = gaussian_splat(points, 1.0, size, size, 1e-6);
    }
    mask.sum().backward();
  }
  state.SetItemsProcessed(state.iterations() * size * size);
  state.counters["size"] = size;
  state.counters["k"] = k;
}
BENCHMARK_CAPTURE(BM_Splat, gaussian_splat, false)
    ->Arg(32)->Arg(64)->Arg(128)->Arg(256)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Splat, dense_formula, true)
    ->Arg(32)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond);

// gaussian_splat on a GPU (skipped without one): `points` points on a
// size x size mask, stddev 1 px, forward + backward (the CUDA issue's
// target: 1024 x 1024 with 10^5 points under 1 ms).
void BM_SplatCuda(benchmark::State& state) {
  const int64_t size = state.range(0), k = state.range(1);
  at::manual_seed(0);
  const at::Tensor points = (at::rand({1, k, 2}) * (size - 1)).cuda().requires_grad_();
  for (auto _ : state) {
    gaussian_splat(points, 1.0, size, size, 1e-6).sum().backward();
    cuda_bench::Sync();
  }
  state.SetItemsProcessed(state.iterations() * k);
  // Per point and pass: its 2 coordinates, and about (2 R + 1)^2 = 121
  // mask pixels (R = 5 px at 1e-6) read or atomically added.
  cuda_bench::Bandwidth(state, double(k) * 2 * (2 * 4 + 121 * 4));
  state.counters["size"] = size;
  state.counters["k"] = k;
}
const cuda_bench::RegisterIfCuda kCudaCases([] {
  benchmark::RegisterBenchmark("BM_SplatCuda", BM_SplatCuda)
      ->Args({256, 10000})->Args({1024, 100000})->Args({4096, 1000000})
      ->Unit(benchmark::kMillisecond)->UseRealTime();
});

}  // namespace
}  // namespace indexgrad

INDEXGRAD_BENCHMARK_MAIN();
