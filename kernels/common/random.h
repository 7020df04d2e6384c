// Counter-based random numbers shared by CPU loops and CUDA kernels: the
// value for (seed, stream, counter) is a pure function, so samples do not
// depend on thread scheduling and a CUDA kernel reproduces the CPU's draws.
#pragma once

#include <cstdint>

#include "kernels/common/host_device.h"

namespace indexgrad {

// SplitMix64 finaliser (Steele, Lea, Flood 2014).
INDEXGRAD_HD uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The per-stream part of random_bits: hoist it out of loops over counters.
INDEXGRAD_HD uint64_t stream_key(uint64_t seed, uint64_t stream) {
  return mix64(seed * 0x9e3779b97f4a7c15ULL + stream);
}

INDEXGRAD_HD uint64_t random_bits(uint64_t seed, uint64_t stream,
                                  uint64_t counter) {
  return mix64(stream_key(seed, stream) + counter);
}

// Uniform integer in [0, n), n >= 1, from 64 random bits (53 of them
// scaled: the bias is below n / 2^53).
INDEXGRAD_HD int64_t below_from_bits(uint64_t bits, int64_t n) {
  const double u = (bits >> 11) * (1.0 / 9007199254740992.0);  // [0, 1)
  int64_t v = static_cast<int64_t>(u * static_cast<double>(n));
  return v < n ? v : n - 1;
}

INDEXGRAD_HD int64_t random_below(uint64_t seed, uint64_t stream,
                                  uint64_t counter, int64_t n) {
  return below_from_bits(random_bits(seed, stream, counter), n);
}

}  // namespace indexgrad
