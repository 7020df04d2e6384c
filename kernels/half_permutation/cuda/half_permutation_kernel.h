// Plain C++ interface of half_permutation's CUDA kernels (no torch headers):
// contiguous device buffers, launches on `stream` (a cudaStream_t as void*).
// Each kernel is a grid-stride loop over one body of
// half_permutation_threads.h.
#pragma once

#include <cstdint>

#include "kernels/half_permutation/half_permutation_threads.h"

namespace indexgrad {
namespace cuda {

// Device buffers of one level: ranks [batch n] (pass 1, from the host:
// detail::bucket_ranks), scratch medians [buckets], bits [buckets S s],
// proportions and repeats [buckets S].
struct BucketScratch {
  const int64_t* ranks;
  double* medians;
  uint8_t* bits;
  double* proportions;
  uint8_t* repeats;
};

// rows, weights [batch, n, S]; keys finite (the host checks).
template <typename scalar_t>
void half_permutation_forward(const BucketLayout& layout, const scalar_t* keys,
                              const BucketScratch& scratch, int64_t* rows,
                              scalar_t* weights, void* stream);

// Adds d loss / d key of element e to out[e out_stride]; logit_grads is
// scratch [buckets S]; rows lie in their buckets (the host checks).
template <typename scalar_t>
void half_permutation_keys_backward(const BucketLayout& layout,
                                    const scalar_t* grad_weights,
                                    const int64_t* rows, const scalar_t* weights,
                                    double* logit_grads, scalar_t* out,
                                    int64_t out_stride, void* stream);

// transpose: y = P^T v (overwrites y); else y += P v (atomics). Rows in
// [0, n) (the host checks).
template <typename scalar_t>
void half_permutation_apply(const ApplyLayout& layout, int64_t batch,
                            const int64_t* rows, const scalar_t* weights,
                            const scalar_t* values, bool transpose, scalar_t* y,
                            void* stream);

// gw [batch, n, S] = <col_side[b, i], row_side[b, rows[b, i, k]]>.
template <typename scalar_t>
void half_permutation_weight_grads(const ApplyLayout& layout, int64_t batch,
                                   const int64_t* rows, const scalar_t* col_side,
                                   const scalar_t* row_side, scalar_t* gw,
                                   void* stream);

}  // namespace cuda
}  // namespace indexgrad
