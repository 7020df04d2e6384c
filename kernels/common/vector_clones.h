// INDEXGRAD_VECTOR_CLONES before a function compiles it twice, for x86-64-v3
// (AVX2, FMA) and for baseline x86-64, and the loader picks the version the
// CPU supports (GCC function multiversioning, an ifunc); `flatten` inlines
// the function's helpers into each version, so they get its instructions.
// Elsewhere (other compilers, other architectures) it is empty.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__CUDACC__)
#define INDEXGRAD_VECTOR_CLONES \
  __attribute__((target_clones("arch=x86-64-v3", "default"), flatten))
#else
#define INDEXGRAD_VECTOR_CLONES
#endif
