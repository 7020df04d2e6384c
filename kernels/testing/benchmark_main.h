// main() for IndexGrad's Google Benchmark binaries: sets LibTorch's
// intra-op threads (env INDEXGRAD_THREADS, default: all hardware threads;
// Debian's LibTorch starts with 1 on the 2-core CI machine kind) and records
// the count and the allocator settings in the benchmark context.
//
//   INDEXGRAD_BENCHMARK_MAIN();   // instead of BENCHMARK_MAIN();
#pragma once

#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <torch/cuda.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace indexgrad {

// The process's peak resident memory so far, in MB (run one size per
// process to read it per size).
inline double MaxRssMb() {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

// CUDA benchmarks are registered through a RegisterIfCuda object, so that
// on a machine without a CUDA device they are absent from the output
// instead of reported as errors:
//
//   const cuda_bench::RegisterIfCuda kCudaCases([] {
//     benchmark::RegisterBenchmark("BM_FooCuda", BM_FooCuda)->Range(16, 1024);
//   });
//
// Inside: Sync() at the end of every iteration (kernels are asynchronous), Bandwidth() after the loop: bytes
// per second as a fraction of the card's memory bandwidth, from env
// INDEXGRAD_PEAK_GBPS (tools/gpu_check.sh sets it: H100 SXM 3350, H200 4800).
namespace cuda_bench {
// Registration functions INDEXGRAD_BENCHMARK_MAIN runs when a device exists.
inline std::vector<void (*)()>& Registrations() {
  static std::vector<void (*)()> registrations;
  return registrations;
}
struct RegisterIfCuda {
  explicit RegisterIfCuda(void (*register_cases)()) { Registrations().push_back(register_cases); }
};
inline void RegisterWhereADeviceExists() {
  if (!torch::cuda::is_available()) return;
  for (void (*register_cases)() : Registrations()) register_cases();
}
inline void Sync() { torch::cuda::synchronize(); }
inline void Bandwidth(benchmark::State& state, double bytes_per_iteration) {
  state.SetBytesProcessed(static_cast<int64_t>(bytes_per_iteration) * state.iterations());
  const char* peak = std::getenv("INDEXGRAD_PEAK_GBPS");
  if (peak != nullptr && std::atof(peak) > 0) {
    state.counters["of_peak"] = benchmark::Counter(
        bytes_per_iteration * state.iterations() / (std::atof(peak) * 1e9),
        benchmark::Counter::kIsRate);
  }
}
}  // namespace cuda_bench

inline void ConfigureBenchmarkContext() {
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  if (const char* env = std::getenv("INDEXGRAD_THREADS")) threads = std::atoi(env);
  if (threads < 1) threads = 1;
  at::set_num_threads(threads);
  benchmark::AddCustomContext("torch_threads", std::to_string(threads));
  const char* mmap = std::getenv("MALLOC_MMAP_THRESHOLD_");
  benchmark::AddCustomContext("MALLOC_MMAP_THRESHOLD_",
                              mmap ? mmap : "glibc default");
}

}  // namespace indexgrad

#define INDEXGRAD_BENCHMARK_MAIN()                        \
  int main(int argc, char** argv) {                       \
    indexgrad::ConfigureBenchmarkContext();               \
    indexgrad::cuda_bench::RegisterWhereADeviceExists();  \
    benchmark::Initialize(&argc, argv);                   \
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1; \
    benchmark::RunSpecifiedBenchmarks();                  \
    benchmark::Shutdown();                                \
    return 0;                                             \
  }
