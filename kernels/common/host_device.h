// Portability macro for per-element math shared by CPU loops and CUDA
// kernels: the CPU tests exercise the same arithmetic the GPU runs.
#pragma once

#if defined(__CUDACC__)
#define INDEXGRAD_HD __host__ __device__ __forceinline__
#else
#define INDEXGRAD_HD inline
#endif
