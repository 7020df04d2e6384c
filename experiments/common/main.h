// The entry point every experiment main goes through:
//
//   absl::Status Main(int argc, char** argv) { ... }
//   int main(int argc, char** argv) {
//     return indexgrad::experiments::RunMain("identity", Main, argc, argv);
//   }
//
// A non-OK status returned by `body`, or a c10::Error escaping it (a
// TORCH_CHECK on a bad flag value, say --stddev_end=0), ends the program
// with "<program>: <message>" on stderr and exit status 1, instead of an
// uncaught exception and a stack trace.
//
// It first calls ShortOpenMpSpins() and KeepFreedMemory(); their effect on
// run time is measured in docs/development.md ("Threads and allocator").
#pragma once

#include "absl/status/status.h"

namespace indexgrad {
namespace experiments {

// glibc serves every block over its mmap threshold with a fresh mmap and
// unmaps it on free, so each training step's large activations are
// page-faulted and zeroed by the kernel again. This keeps every block in
// the heap (M_MMAP_MAX 0) and freed memory in the process
// (M_TRIM_THRESHOLD 2 GiB), at the cost of a somewhat larger peak. An
// environment's own MALLOC_MMAP_MAX_ / MALLOC_TRIM_THRESHOLD_ wins; Python
// users set those two variables for the same effect. No-op off glibc.
void KeepFreedMemory();

// libgomp's threads spin 300,000 times at every barrier before sleeping:
// free on an idle machine, ruinous when another job holds a core (every
// parallel region then waits for the thread that lost its core). libgomp
// reads its environment once, before main, so when neither GOMP_SPINCOUNT
// nor OMP_WAIT_POLICY is set this sets GOMP_SPINCOUNT=3000 and execs the
// program again (/proc/self/exe, same arguments); when exec fails it
// returns and libgomp keeps its defaults. The second start loads LibTorch
// again (a fraction of a second). Linux only.
void ShortOpenMpSpins(char** argv);

int RunMain(const char* program, absl::Status (*body)(int, char**), int argc, char** argv);

}  // namespace experiments
}  // namespace indexgrad
