// Per-element math of half_permutation, shared by the CPU loop (and a future
// CUDA kernel: see kernels/common/host_device.h), so the CPU tests exercise
// the arithmetic a GPU would run.
//
// One quicksort level on a bucket of `s` keys (s even), paper section 3.3:
//   m     = median of the bucket = (x_(s/2) + x_(s/2+1)) / 2, the mean of the
//           two middle order statistics (ranks from a stable sort, so ties
//           are ordered by position);
//   z_i   = C (x_i - m),  o'_i = sigmoid(z_i);
//   log p(o) = sum_i [o_i log o'_i + (1 - o_i) log(1 - o'_i)]
//            = sum_i log sigmoid(o_i ? z_i : -z_i).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"
#include "kernels/common/random.h"

namespace indexgrad {

// log sigmoid(z) and log sigmoid(-z) = log(1 - sigmoid(z)) with one exp and
// one log1p, both without cancellation: with l = log1p(exp(-|z|)),
// log sigmoid(|z|) = -l and log sigmoid(-|z|) = -|z| - l. In the keys'
// precision T (float keys: float exp/log1p, about 3x cheaper).
template <typename T>
INDEXGRAD_HD void log_sigmoid_pair(T z, T* log_up, T* log_down) {
  using std::exp;  // the float overloads for T = float
  using std::log1p;
  const T a = z >= 0 ? z : -z;
  const T l = log1p(exp(-a));
  *log_up = z >= 0 ? -l : -a - l;
  *log_down = z >= 0 ? -a - l : -l;
}

// Random stream of candidate `k` of the bucket starting at column `start` of
// row `b`, at quicksort level `depth` (n columns, S candidates per bucket).
INDEXGRAD_HD uint64_t half_permutation_stream(int64_t b, int64_t depth,
                                              int64_t n, int64_t start,
                                              int64_t num_candidates,
                                              int64_t k) {
  return ((static_cast<uint64_t>(b) * 64 + static_cast<uint64_t>(depth)) *
              static_cast<uint64_t>(n) +
          static_cast<uint64_t>(start)) *
             static_cast<uint64_t>(num_candidates) +
         static_cast<uint64_t>(k);
}

// A uniformly random balanced binary vector of length s (exactly s/2 ones)
// by selection sampling (Knuth, TAOCP 3.4.2, Algorithm S): position i is 1
// with probability (ones still needed) / (positions left). Writes o[0..s).
template <typename Bit>
INDEXGRAD_HD void sample_balanced(uint64_t seed, uint64_t stream, int64_t s,
                                  Bit* o) {
  int64_t need = s / 2;
  for (int64_t i = 0; i < s; ++i) {
    const int64_t left = s - i;
    o[i] = random_below(seed, stream, static_cast<uint64_t>(i), left) < need;
    need -= o[i] ? 1 : 0;
  }
}

}  // namespace indexgrad
