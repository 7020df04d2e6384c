// Per-tuple sampling rules of sample_tuples (Bloem et al. 2018, section 2.1
// and Algorithm 1), shared by the CPU kernel and the CUDA kernel.
//
// For a continuous tuple mu in [0, size_d - 1]^r the samples are, in order:
//   s in [0, 2^r)            the floor/ceil neighbours; bit (r-1-d) of s
//                            picks ceil in dimension d (first dim slowest)
//   next num_local           uniform in a box of `region` cells around
//                            round(mu) (round half up), shifted inside bounds
//   last num_global          uniform over all tuples
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"
#include "kernels/common/random.h"
#include "kernels/common/tuple_rank.h"

namespace indexgrad {

// Round half up (means are non-negative: the same as std::round, and unlike
// torch.round, which rounds halves to even). Used for sampling boxes and for
// the layers' evaluation mode.
INDEXGRAD_HD int64_t round_index(double mean) {
  return static_cast<int64_t>(floor(mean + 0.5));
}

// The floor/ceil neighbours of mean component mu in [0, size - 1] (ceil
// clamped to size - 1: mu = size - 1 exactly).
INDEXGRAD_HD int64_t neighbour(double mu, bool use_ceil, int64_t size) {
  const int64_t v = use_ceil ? static_cast<int64_t>(ceil(mu))
                             : static_cast<int64_t>(floor(mu));
  return v < size ? v : size - 1;
}

// First cell of the local sampling box (width min(region, size)) around
// round(mu), shifted inside [0, size).
INDEXGRAD_HD int64_t local_box_start(double mu, int64_t width, int64_t size) {
  int64_t lo = round_index(mu) - width / 2;
  if (lo < 0) lo = 0;
  if (lo > size - width) lo = size - width;
  return lo;
}

// Component d of sample s of a tuple; `tuple_key` = stream_key(seed,
// tuple id) (random.h), computed once per tuple. Draw (s, d) uses counter
// s * rank + d of the tuple's stream: random_below(seed, tuple id, counter).
// (The CPU kernel evaluates the same rules phase by phase, with the
// per-component terms hoisted; a test compares it with this function.)
template <typename scalar_t>
INDEXGRAD_HD int64_t sample_component(const scalar_t* mean, int rank, int d,
                                      int64_t s, int64_t size, int64_t region,
                                      int64_t num_local, uint64_t tuple_key) {
  const int64_t num_neighbours = int64_t(1) << rank;
  const double mu = static_cast<double>(mean[d]);
  if (s < num_neighbours) {
    return neighbour(mu, (s >> (rank - 1 - d)) & 1, size);
  }
  const uint64_t counter = static_cast<uint64_t>(s) * rank + d;
  if (s < num_neighbours + num_local) {
    const int64_t width = region < size ? region : size;
    return local_box_start(mu, width, size) +
           below_from_bits(mix64(tuple_key + counter), width);
  }
  return below_from_bits(mix64(tuple_key + counter), size);
}

// Everything one output element depends on besides the means: sizes and
// region per component, samples per tuple (2^rank + num_local +
// num_global).
struct SampleLayout {
  int rank;
  int64_t samples, num_local;
  uint64_t seed;
  int64_t sizes[kMaxTupleRank], region[kMaxTupleRank];
};

// Output element i of sample_tuples (flat index into [batch * k, samples,
// rank]): one CUDA thread's whole work. means: [batch * k, rank].
template <typename scalar_t>
INDEXGRAD_HD int64_t sample_element(const SampleLayout& layout,
                                    const scalar_t* means, int64_t i) {
  const int64_t per_tuple = layout.samples * layout.rank;
  const int64_t t = i / per_tuple;
  const int64_t rem = i - t * per_tuple;
  const int64_t s = rem / layout.rank;
  const int d = static_cast<int>(rem - s * layout.rank);
  const uint64_t key = stream_key(layout.seed, static_cast<uint64_t>(t));
  return sample_component(means + t * layout.rank, layout.rank, d, s,
                          layout.sizes[d], layout.region[d], layout.num_local,
                          key);
}

}  // namespace indexgrad
