// Per-element math of half_permutation, shared by the CPU loop and the CUDA
// kernels' per-thread bodies (half_permutation_threads.h; see
// kernels/common/host_device.h), so the CPU tests exercise the arithmetic a
// GPU runs.
//
// One quicksort level on a bucket of `s` keys (s even), paper section 3.3:
//   m     = median of the bucket = (x_(s/2) + x_(s/2+1)) / 2, the mean of the
//           two middle order statistics (ranks from a stable order, so ties
//           are ordered by position);
//   z_i   = C (x_i - m),  o'_i = sigmoid(z_i);
//   p(o)  = prod_i o'_i^o_i (1 - o'_i)^(1 - o_i)
//         = prod_i sigmoid(-z_i) * exp(sum_{i: o_i = 1} z_i),
// since sigmoid(z) / sigmoid(-z) = exp(z). The first factor is common to
// every candidate of the bucket and cancels in the normalisation, so the
// normalised proportions are exactly softmax_k(sum_{i: o_ki = 1} z_i): one
// exp per candidate, no per-key exp or log, no 0/0 however far the keys
// are (the largest logit is subtracted first). Every candidate being
// balanced, the median cancels as well: it only decides round(o').
#pragma once

#include <math.h>

#include <cstdint>

#include "kernels/common/host_device.h"
#include "kernels/common/random.h"

namespace indexgrad {

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
  const uint64_t key = stream_key(seed, stream);  // = random_below(seed, stream, i, .)
  int64_t need = s / 2;
  for (int64_t i = 0; i < s; ++i) {
    const int64_t left = s - i;
    o[i] = below_from_bits(mix64(key + static_cast<uint64_t>(i)), left) < need;
    need -= o[i] ? 1 : 0;
  }
}

// z_i = C (x_i - m) read from an array (the CPU kernel computes them once
// per bucket) or from the keys themselves (a CUDA thread per candidate).
struct ArrayLogits {
  const double* z;
  INDEXGRAD_HD double operator()(int64_t i) const { return z[i]; }
};
template <typename scalar_t>
struct KeyLogits {
  const scalar_t* x;  // the bucket's first key; key i at x[i stride]
  int64_t stride;
  double median, temperature;
  INDEXGRAD_HD double operator()(int64_t i) const {
    return temperature * (static_cast<double>(x[i * stride]) - median);
  }
};

// The candidate's logit, sum_{i: o_i = 1} z_i (see the top of this file),
// branch-free with four partial sums (o is random: a branch on it
// mispredicts half the time).
template <typename Bit, typename Logits>
INDEXGRAD_HD double candidate_logit(const Bit* o, const Logits& z, int64_t s) {
  double acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
  int64_t i = 0;
  for (; i + 4 <= s; i += 4) {
    acc0 += o[i] * z(i);
    acc1 += o[i + 1] * z(i + 1);
    acc2 += o[i + 2] * z(i + 2);
    acc3 += o[i + 3] * z(i + 3);
  }
  for (; i < s; ++i) acc0 += o[i] * z(i);
  return (acc0 + acc1) + (acc2 + acc3);
}

// Logits -> normalised proportions over the distinct candidates, in place
// (duplicates, dup[k] = 1, get 0; the largest logit is subtracted first).
INDEXGRAD_HD void normalise_proportions(double* logit, const uint8_t* dup,
                                        int64_t S) {
  double top = -HUGE_VAL;
  for (int64_t k = 0; k < S; ++k) {
    if (!dup[k] && logit[k] > top) top = logit[k];
  }
  double total = 0;
  for (int64_t k = 0; k < S; ++k) {
    logit[k] = dup[k] ? 0.0 : exp(logit[k] - top);
    total += logit[k];
  }
  for (int64_t k = 0; k < S; ++k) logit[k] /= total;
}

// Rows of candidate o by a stable partition (Algorithm 2): o = 0 keys fill
// the bucket's first half in order, o = 1 keys its second half. Writes the
// s entries rows[i S], weights[i S] (strided by the S candidates).
// Branch-free: o is random, branches on it mispredict half the time.
template <typename Bit, typename scalar_t>
INDEXGRAD_HD void write_rows(const Bit* o, int64_t s, int64_t start, int64_t S,
                             scalar_t w, int64_t* rows, scalar_t* weights) {
  int64_t lower = start, upper = start + s / 2;  // next free rows
  for (int64_t i = 0; i < s; ++i) {
    const int64_t up = o[i];
    rows[i * S] = up * upper + (1 - up) * lower;
    upper += up;
    lower += 1 - up;
    weights[i * S] = w;
  }
}

}  // namespace indexgrad
