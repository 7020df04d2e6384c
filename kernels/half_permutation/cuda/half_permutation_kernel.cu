// CUDA kernels of half_permutation, half_permutation_apply and (through the
// host entry's loop over levels) quicksort_levels: one grid-stride kernel
// per pass of half_permutation_threads.h, each thread running that pass's
// body for its index, as the CPU tests do for every index. Deterministic
// except the scatter of half_permutation_apply (atomicAdd: the S shares of
// an output add in any order).
#include <cuda_runtime.h>

#include "kernels/common/cuda/grid_stride.h"
#include "kernels/half_permutation/cuda/half_permutation_kernel.h"

namespace indexgrad {
namespace cuda {
namespace {

constexpr int kThreads = 256;


cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }


template <typename scalar_t>
__global__ void median_kernel(BucketLayout L, const scalar_t* keys,
                              const int64_t* ranks, double* medians) {
  INDEXGRAD_GRID_STRIDE(u, L.buckets()) { medians[u] = bucket_median(L, keys, ranks, u); }
}

template <typename scalar_t>
__global__ void bits_kernel(BucketLayout L, const scalar_t* keys, const int64_t* ranks,
                            const double* medians, uint8_t* bits, double* logits) {
  INDEXGRAD_GRID_STRIDE(c, L.buckets() * L.num_candidates) {
    logits[c] = candidate_bits_and_logit(L, keys, ranks, medians, c, bits);
  }
}

__global__ void repeat_kernel(BucketLayout L, const uint8_t* bits, uint8_t* repeats) {
  INDEXGRAD_GRID_STRIDE(c, L.buckets() * L.num_candidates) {
    repeats[c] = candidate_is_repeat(L, bits, c);
  }
}

__global__ void proportions_kernel(BucketLayout L, const uint8_t* repeats, double* logits) {
  INDEXGRAD_GRID_STRIDE(u, L.buckets()) { bucket_proportions(L, repeats, logits, u); }
}

template <typename scalar_t>
__global__ void rows_kernel(BucketLayout L, const uint8_t* bits, const double* proportions,
                            int64_t* rows, scalar_t* weights) {
  INDEXGRAD_GRID_STRIDE(c, L.buckets() * L.num_candidates) {
    candidate_rows(L, bits, proportions, c, rows, weights);
  }
}

template <typename scalar_t>
__global__ void logit_grad_kernel(BucketLayout L, const scalar_t* grad_weights,
                                  double* logit_grads) {
  INDEXGRAD_GRID_STRIDE(c, L.buckets() * L.num_candidates) {
    logit_grads[c] = candidate_logit_gradient(L, grad_weights, c);
  }
}

template <typename scalar_t>
__global__ void key_grad_kernel(BucketLayout L, const int64_t* rows, const scalar_t* weights,
                                const double* logit_grads, scalar_t* out, int64_t stride) {
  INDEXGRAD_GRID_STRIDE(e, L.batch * L.n) {
    out[e * stride] += key_gradient(L, rows, weights, logit_grads, e);
  }
}

template <typename scalar_t>
__global__ void gather_kernel(ApplyLayout A, int64_t total, const int64_t* rows,
                              const scalar_t* w, const scalar_t* v, scalar_t* y) {
  INDEXGRAD_GRID_STRIDE(q, total) { y[q] = gather_element(A, rows, w, v, q / A.f, q % A.f); }
}

struct AtomicAdd {
  template <typename scalar_t>
  __device__ void operator()(scalar_t* at, scalar_t value) const {
    atomicAdd(at, value);
  }
};

template <typename scalar_t>
__global__ void scatter_kernel(ApplyLayout A, int64_t total, const int64_t* rows,
                               const scalar_t* w, const scalar_t* v, scalar_t* y) {
  INDEXGRAD_GRID_STRIDE(q, total) {
    scatter_element(A, rows, w, v, q / A.f, q % A.f, y, AtomicAdd{});
  }
}

template <typename scalar_t>
__global__ void weight_grad_kernel(ApplyLayout A, int64_t total, const int64_t* rows,
                                   const scalar_t* col_side, const scalar_t* row_side,
                                   scalar_t* gw) {
  INDEXGRAD_GRID_STRIDE(q, total) { gw[q] = weight_gradient(A, rows, col_side, row_side, q); }
}

}  // namespace

template <typename scalar_t>
void half_permutation_forward(const BucketLayout& L, const scalar_t* keys,
                              const BucketScratch& m, int64_t* rows, scalar_t* weights,
                              void* stream) {
  const int64_t elements = L.batch * L.n, buckets = L.buckets();
  const int64_t candidates = buckets * L.num_candidates;
  if (elements == 0) return;
  cudaStream_t st = as_stream(stream);
  const int per_bucket = blocks_for(buckets, kThreads);
  const int per_candidate = blocks_for(candidates, kThreads);
  median_kernel<<<per_bucket, kThreads, 0, st>>>(L, keys, m.ranks, m.medians);
  bits_kernel<<<per_candidate, kThreads, 0, st>>>(L, keys, m.ranks, m.medians, m.bits,
                                                  m.proportions);
  repeat_kernel<<<per_candidate, kThreads, 0, st>>>(L, m.bits, m.repeats);
  proportions_kernel<<<per_bucket, kThreads, 0, st>>>(L, m.repeats, m.proportions);
  rows_kernel<<<per_candidate, kThreads, 0, st>>>(L, m.bits, m.proportions, rows, weights);
}

template <typename scalar_t>
void half_permutation_keys_backward(const BucketLayout& L, const scalar_t* grad_weights,
                                    const int64_t* rows, const scalar_t* weights,
                                    double* logit_grads, scalar_t* out, int64_t out_stride,
                                    void* stream) {
  const int64_t elements = L.batch * L.n;
  if (elements == 0) return;
  cudaStream_t st = as_stream(stream);
  logit_grad_kernel<<<blocks_for(L.buckets() * L.num_candidates, kThreads), kThreads, 0,
                      st>>>(L, grad_weights, logit_grads);
  key_grad_kernel<<<blocks_for(elements, kThreads), kThreads, 0, st>>>(
      L, rows, weights, logit_grads, out, out_stride);
}

template <typename scalar_t>
void half_permutation_apply(const ApplyLayout& A, int64_t batch, const int64_t* rows,
                            const scalar_t* w, const scalar_t* v, bool transpose,
                            scalar_t* y, void* stream) {
  const int64_t total = batch * A.n * A.f;
  if (total == 0) return;
  cudaStream_t st = as_stream(stream);
  if (transpose) {
    gather_kernel<<<blocks_for(total, kThreads), kThreads, 0, st>>>(A, total, rows, w, v, y);
  } else {
    scatter_kernel<<<blocks_for(total, kThreads), kThreads, 0, st>>>(A, total, rows, w, v, y);
  }
}

template <typename scalar_t>
void half_permutation_weight_grads(const ApplyLayout& A, int64_t batch, const int64_t* rows,
                                   const scalar_t* col_side, const scalar_t* row_side,
                                   scalar_t* gw, void* stream) {
  const int64_t total = batch * A.n * A.S;
  if (total == 0) return;
  weight_grad_kernel<<<blocks_for(total, kThreads), kThreads, 0, as_stream(stream)>>>(
      A, total, rows, col_side, row_side, gw);
}

#define INDEXGRAD_INSTANTIATE(T)                                                         \
  template void half_permutation_forward<T>(const BucketLayout&, const T*,              \
                                            const BucketScratch&, int64_t*, T*, void*); \
  template void half_permutation_keys_backward<T>(const BucketLayout&, const T*,        \
                                                  const int64_t*, const T*, double*,   \
                                                  T*, int64_t, void*);                  \
  template void half_permutation_apply<T>(const ApplyLayout&, int64_t, const int64_t*,  \
                                          const T*, const T*, bool, T*, void*);         \
  template void half_permutation_weight_grads<T>(const ApplyLayout&, int64_t,           \
                                                 const int64_t*, const T*, const T*,    \
                                                 T*, void*);
INDEXGRAD_INSTANTIATE(float)
INDEXGRAD_INSTANTIATE(double)
#undef INDEXGRAD_INSTANTIATE

}  // namespace cuda
}  // namespace indexgrad
