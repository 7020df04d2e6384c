// Per-thread bodies of half_permutation's CUDA kernels, one function of the
// thread's index each, built from half_permutation_math.h (the CPU kernel's
// arithmetic). The CPU test runs every body for every index of small grids
// and compares with the CPU op (half_permutation_test: "ThreadBodies").
//
// Indices: element e in [0, batch n) (row-major (b, i)); bucket u in
// [0, batch n / s), whose first element is u s; candidate c = u S + k.
// One level, forward (each pass a kernel; scratch in global memory):
//   1 (host)           stable ranks in each bucket: a segmented sort on the
//                                           device (detail::bucket_ranks)
//   2 bucket_median    thread per bucket    mean of ranks s/2 - 1 and s/2
//   3 candidate_bits_and_logit  per candidate  round(o') (k = 0) or a
//                                           random balanced vector, and
//                                           sum_{o_i = 1} z_i
//   4 candidate_is_repeat       per candidate  equal to an earlier one
//   5 bucket_proportions        per bucket   softmax over distinct ones
//   6 candidate_rows            per candidate  the stable partition
// Backward of the keys: 7 candidate_logit_gradient (per candidate), then
// 8 key_gradient (per element). half_permutation_apply: 9 gather_element
// (transpose, per (element, feature)), 10 scatter_element (per (element,
// feature), the caller's Add: atomicAdd on the GPU), 11 weight_gradient
// (per (element, candidate)).
#pragma once

#include <cstdint>

#include "kernels/common/host_device.h"
#include "kernels/half_permutation/half_permutation_math.h"

namespace indexgrad {

struct BucketLayout {
  int64_t batch, n;
  int64_t s;               // keys per bucket, n >> depth
  int64_t num_candidates;  // S
  int64_t depth;
  int64_t key_stride;      // key of element e at keys[e key_stride]
  double temperature;
  uint64_t seed;

  INDEXGRAD_HD int64_t buckets() const { return batch * (n / s); }
  INDEXGRAD_HD int64_t row_of(int64_t u) const { return u / (n / s); }
  INDEXGRAD_HD int64_t start_of(int64_t u) const { return (u % (n / s)) * s; }
};

// 2: the bucket's median, from the ranks of pass 1 (detail::bucket_ranks).
template <typename scalar_t>
INDEXGRAD_HD double bucket_median(const BucketLayout& L, const scalar_t* keys,
                                  const int64_t* ranks, int64_t u) {
  const int64_t half = L.s / 2;
  scalar_t lower = 0, upper = 0;
  for (int64_t e = u * L.s; e < (u + 1) * L.s; ++e) {
    if (ranks[e] == half - 1) lower = keys[e * L.key_stride];
    if (ranks[e] == half) upper = keys[e * L.key_stride];
  }
  return 0.5 * (static_cast<double>(lower) + upper);
}

// 3: writes candidate c's s bits at bits + c s and returns its logit.
template <typename scalar_t>
INDEXGRAD_HD double candidate_bits_and_logit(const BucketLayout& L,
                                             const scalar_t* keys,
                                             const int64_t* ranks,
                                             const double* medians, int64_t c,
                                             uint8_t* bits) {
  const int64_t S = L.num_candidates, u = c / S, k = c % S;
  const int64_t first = u * L.s, half = L.s / 2;
  uint8_t* o = bits + c * L.s;
  if (k == 0) {
    for (int64_t i = 0; i < L.s; ++i) o[i] = ranks[first + i] >= half;
  } else {
    sample_balanced(L.seed,
                    half_permutation_stream(L.row_of(u), L.depth, L.n,
                                            L.start_of(u), S, k),
                    L.s, o);
  }
  return candidate_logit(
      o, KeyLogits<scalar_t>{keys + first * L.key_stride, L.key_stride,
                             medians[u], L.temperature},
      L.s);
}

// 4: 1 when candidate c equals, bit for bit, an earlier one of its bucket.
INDEXGRAD_HD uint8_t candidate_is_repeat(const BucketLayout& L,
                                         const uint8_t* bits, int64_t c) {
  const int64_t k = c % L.num_candidates;
  const uint8_t* o = bits + c * L.s;
  for (int64_t j = c - k; j < c; ++j) {
    const uint8_t* p = bits + j * L.s;
    bool equal = true;
    for (int64_t i = 0; i < L.s && equal; ++i) equal = p[i] == o[i];
    if (equal) return 1;
  }
  return 0;
}

// 5: the bucket's logits -> proportions, in place.
INDEXGRAD_HD void bucket_proportions(const BucketLayout& L, const uint8_t* repeats,
                                     double* logits, int64_t u) {
  const int64_t S = L.num_candidates;
  normalise_proportions(logits + u * S, repeats + u * S, S);
}

// 6: candidate c's rows and weights, entries [(u s + i) S + k].
template <typename scalar_t>
INDEXGRAD_HD void candidate_rows(const BucketLayout& L, const uint8_t* bits,
                                 const double* proportions, int64_t c,
                                 int64_t* rows, scalar_t* weights) {
  const int64_t S = L.num_candidates, u = c / S, k = c % S;
  const int64_t at = u * L.s * S + k;
  write_rows(bits + c * L.s, L.s, L.start_of(u), S,
             static_cast<scalar_t>(proportions[c]), rows + at, weights + at);
}

// 7: d loss / d p_k summed over the bucket's columns (every column of the
// bucket carries the same p_k).
template <typename scalar_t>
INDEXGRAD_HD double candidate_logit_gradient(const BucketLayout& L,
                                             const scalar_t* grad_weights,
                                             int64_t c) {
  const int64_t S = L.num_candidates, u = c / S, k = c % S;
  const scalar_t* g = grad_weights + u * L.s * S + k;
  double acc = 0;
  for (int64_t i = 0; i < L.s; ++i) acc += g[i * S];
  return acc;
}

// 8: d loss / d key of element e, C sum_k w_k (g_k - sum_j w_j g_j) o_ki
// (the CPU kernel's keys_backward, which explains the formula); rows must
// lie in their bucket.
template <typename scalar_t>
INDEXGRAD_HD scalar_t key_gradient(const BucketLayout& L, const int64_t* rows,
                                   const scalar_t* weights,
                                   const double* logit_grads, int64_t e) {
  const int64_t S = L.num_candidates, u = e / L.s;
  const int64_t up_from = L.start_of(u) + L.s / 2;
  const scalar_t* w = weights + u * L.s * S;  // the bucket's first column
  const double* g = logit_grads + u * S;
  double mean = 0;
  for (int64_t k = 0; k < S; ++k) mean += w[k] * g[k];
  double gz = 0;
  for (int64_t k = 0; k < S; ++k) {
    const double pick = w[k] * (g[k] - mean);
    gz += rows[e * S + k] >= up_from ? pick : 0.0;
  }
  return static_cast<scalar_t>(L.temperature * gz);
}

// Shapes of half_permutation_apply: rows, weights [batch, n, S], values
// [batch, n, f], flat element t = b n + i.
struct ApplyLayout {
  int64_t n, S, f;
};

// 9: y = P^T v at (t, c): sum_k w[t, k] v[b, rows[t, k], c]. Rows in [0, n).
template <typename scalar_t>
INDEXGRAD_HD scalar_t gather_element(const ApplyLayout& A, const int64_t* rows,
                                     const scalar_t* w, const scalar_t* v,
                                     int64_t t, int64_t c) {
  const int64_t b = t / A.n;
  scalar_t acc = 0;
  for (int64_t k = 0; k < A.S; ++k) {
    const scalar_t wk = w[t * A.S + k];
    if (wk == 0) continue;
    acc += wk * v[(b * A.n + rows[t * A.S + k]) * A.f + c];
  }
  return acc;
}

// 10: y = P v, the share of (t, c): add(&y[b, rows[t, k], c], w v[t, c]).
template <typename scalar_t, typename Add>
INDEXGRAD_HD void scatter_element(const ApplyLayout& A, const int64_t* rows,
                                  const scalar_t* w, const scalar_t* v,
                                  int64_t t, int64_t c, scalar_t* y,
                                  const Add& add) {
  const int64_t b = t / A.n;
  const scalar_t value = v[t * A.f + c];
  for (int64_t k = 0; k < A.S; ++k) {
    const scalar_t wk = w[t * A.S + k];
    if (wk == 0) continue;
    add(y + (b * A.n + rows[t * A.S + k]) * A.f + c, wk * value);
  }
}

// 11: d loss / d w at q = t S + k: <col_side[t], row_side[b, rows[q]]>.
template <typename scalar_t>
INDEXGRAD_HD scalar_t weight_gradient(const ApplyLayout& A, const int64_t* rows,
                                      const scalar_t* col_side,
                                      const scalar_t* row_side, int64_t q) {
  const int64_t t = q / A.S, b = t / A.n;
  const scalar_t* a = col_side + t * A.f;
  const scalar_t* r = row_side + (b * A.n + rows[q]) * A.f;
  scalar_t dot = 0;
  for (int64_t j = 0; j < A.f; ++j) dot += a[j] * r[j];
  return dot;
}

}  // namespace indexgrad
