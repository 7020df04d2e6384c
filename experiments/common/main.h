// The entry point every experiment main goes through:
//
//   int Main(int argc, char** argv) { ... }
//   int main(int argc, char** argv) {
//     return indexgrad::experiments::RunMain("identity", Main, argc, argv);
//   }
//
// A c10::Error escaping `body` (a TORCH_CHECK on a bad flag value, say
// --stddev_end=0) ends the program with "<program>: <message>" and exit
// status 1, instead of an uncaught exception and a stack trace.
//
// It first calls KeepFreedMemory().
#pragma once

namespace indexgrad {
namespace experiments {

// glibc serves every block over its mmap threshold (at most 32 MiB) with a
// fresh mmap and unmaps it on free, so each training step's large
// activations (164 MB per layer for the paper's attention network) are
// page-faulted and zeroed by the kernel again: at the paper's settings
// that was 40 % of a sparse1 step on one thread. This keeps every block in
// the heap (M_MMAP_MAX 0) and freed memory in the process (M_TRIM_THRESHOLD
// 2 GiB); peak memory grows a little (sparse1 paper: 1.95 -> 2.3 GB). An
// environment's own MALLOC_MMAP_MAX_ / MALLOC_TRIM_THRESHOLD_ wins. No-op
// off glibc. Python users get the same with those two variables (README).
void KeepFreedMemory();

int RunMain(const char* program, int (*body)(int, char**), int argc, char** argv);

}  // namespace experiments
}  // namespace indexgrad
