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
// It first calls ShortOpenMpSpins() and KeepFreedMemory().
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

// libgomp's threads spin 300,000 times at every barrier before sleeping,
// which is free on an idle machine and ruinous when another job holds a
// core: the default attention preset's RAM run took 1,195 s instead of
// about 15 s beside two one-thread jobs on this 2-core machine, a
// 1,024-image RAM epoch 65 s (GOMP_SPINCOUNT=3000: 9.4 s; passive
// waiting: 2.6 s, but 35 % slower when idle; 3,000 spins cost nothing
// measurable idle). libgomp reads its environment once, before main, so
// when neither GOMP_SPINCOUNT nor OMP_WAIT_POLICY is set this sets
// GOMP_SPINCOUNT=3000 and execs the program again (/proc/self/exe, same
// arguments); when exec fails it returns and libgomp keeps its defaults.
// The second start costs about 0.4 s (LibTorch loads again). Linux only.
void ShortOpenMpSpins(char** argv);

int RunMain(const char* program, int (*body)(int, char**), int argc, char** argv);

}  // namespace experiments
}  // namespace indexgrad
