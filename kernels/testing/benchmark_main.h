// main() for IndexGrad's Google Benchmark binaries: sets LibTorch's
// intra-op threads (env INDEXGRAD_THREADS, default: all hardware threads;
// Debian's LibTorch starts with 1 on the 2-core CI machine kind) and records
// the count and the allocator settings in the benchmark context.
//
//   INDEXGRAD_BENCHMARK_MAIN();   // instead of BENCHMARK_MAIN();
#pragma once

#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <thread>

namespace indexgrad {

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
    benchmark::Initialize(&argc, argv);                   \
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1; \
    benchmark::RunSpecifiedBenchmarks();                  \
    benchmark::Shutdown();                                \
    return 0;                                             \
  }
