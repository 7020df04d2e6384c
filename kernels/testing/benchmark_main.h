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

#include <cstdlib>
#include <string>
#include <thread>

namespace indexgrad {

// The process's peak resident memory so far, in MB (run one size per
// process to read it per size).
inline double MaxRssMb() {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

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
