// half_permutation: one level of the differentiable quicksort (Bloem et al.
// 2018, section 3.3 and appendix Algorithm 2) as a sparse layer.
//
//   auto [rows, weights] = indexgrad::half_permutation(
//       keys, /*depth=*/0, /*num_samples=*/2, /*temperature=*/10.0, /*seed=*/1);
//   at::Tensor y = indexgrad::half_permutation_apply(rows, weights, x,
//                                                    /*transpose=*/false);
//
// keys [batch, n] float/double, finite. Level `depth` splits the n columns
//   into 2^depth buckets of s = n / 2^depth keys (n must be divisible by
//   2^(depth+1), so s is even). Per bucket: the median m is the mean of the
//   two middle keys (ranks from a stable sort: equal keys keep their order),
//   o'_i = sigmoid(temperature * (x_i - m)).
// Candidates per bucket, S = 1 + num_samples: candidate 0 is round(o'), the
//   hard split (the s/2 highest-ranked keys go up; equal to the elementwise
//   round of o' whenever the two middle keys differ, and still balanced when
//   they tie); candidates 1..num_samples are uniformly random balanced
//   vectors, drawn directly from the counter-based RNG (seed, row, depth,
//   bucket, candidate), no permutation cache.
// Proportions: p(o) = prod_i o'_i^o_i (1 - o'_i)^(1 - o_i), computed as a
//   softmax over candidates of sum_{i: o_i = 1} z_i (half_permutation_math.h);
//   a candidate equal (bit for bit) to an earlier one of its bucket gets 0;
//   the rest are normalised per bucket, so every column sums to one. The
//   bucket's block of the matrix is the mixture sum_k w_k P(o_k): the matrix
//   is block diagonal, so each bucket is a mixture of its own (the paper's
//   whole-length vectors with product proportions would couple unrelated
//   buckets through one normaliser).
// Rows, Algorithm 2: a stable partition of the bucket: keys with o = 0 move
//   to the bucket's first half in their order, keys with o = 1 to its second.
//
// returns rows    [batch, n, S] int64: output row of column i under
//                 candidate k (each candidate is a permutation);
//         weights [batch, n, S]: w_k of the bucket of column i, so
//                 (rows[b, i, k], i) with value weights[b, i, k] are the
//                 nonzeros of the level's matrix P (y = P x) and can be fed
//                 to sparse_contract as they are.
// Differentiable in keys through weights (`_half_permutation_backward`).
// The median carries no gradient, exactly: moving it shifts every balanced
// candidate's log p(o) by the same amount, which the normalisation cancels.
//
// half_permutation_apply(rows, weights, values, transpose):
//   values [batch, n, ...] (any trailing shape), dtype of weights.
//   transpose = false: y = P values, y[b, rows[b,i,k]] += w[b,i,k] values[b,i]
//   transpose = true:  y = P^T values, y[b, i] = sum_k w[b,i,k] values[b, rows[b,i,k]]
//   Differentiable in weights and values (`_half_permutation_apply_backward`).
// Python: torch.ops.indexgrad.half_permutation / half_permutation_apply.
#pragma once

#include <ATen/ATen.h>

#include <tuple>
#include <vector>

namespace indexgrad {

std::tuple<at::Tensor, at::Tensor> half_permutation(const at::Tensor& keys,
                                                    int64_t depth,
                                                    int64_t num_samples,
                                                    double temperature,
                                                    int64_t seed);

at::Tensor half_permutation_apply(const at::Tensor& rows,
                                  const at::Tensor& weights,
                                  const at::Tensor& values, bool transpose);

// All log2 n levels of the quicksort in one op (what SortLayer runs): no
// per-level op calls, autograd nodes or views.
//   keys [batch, n] (n a power of two >= 2), values [batch, n, f], same
//   dtype. Level d (0-based) applies half_permutation(keys_d, d,
//   num_samples, temperature, seed + d) to [keys_d | values_d]: the keys
//   travel with the values and each level takes its medians from the
//   (mixed) keys the level before produced, as in equation (1).
// returns L = log2 n tensors each (one allocation per level, so that the
//   allocator recycles them across calls instead of mapping one large
//   block afresh on every call):
//   levels  [batch, n, 1 + f]: [keys | values] after each level,
//   rows    [batch, n, S], weights [batch, n, S]: each level's
//           half-permutation, as half_permutation returns it.
// Differentiable in keys and values through levels
// (`_quicksort_levels_backward`); rows and weights carry no gradient
// (for the intermediate loss, pass targets through half_permutation_apply
// under no-grad, as SortLoss does).
using TensorVector = std::vector<at::Tensor>;
std::tuple<TensorVector, TensorVector, TensorVector> quicksort_levels(
    const at::Tensor& keys, const at::Tensor& values, int64_t num_samples,
    double temperature, int64_t seed);

namespace detail {

// Returns (grad_keys [batch, n], grad_values [batch, n, f]).
std::tuple<at::Tensor, at::Tensor> _quicksort_levels_backward(
    at::TensorList grad_levels, const at::Tensor& keys, const at::Tensor& values,
    at::TensorList levels, at::TensorList rows, at::TensorList weights,
    double temperature);

// Returns grad_keys [batch, n].
at::Tensor _half_permutation_backward(const at::Tensor& grad_weights,
                                      const at::Tensor& keys,
                                      const at::Tensor& rows,
                                      const at::Tensor& weights, int64_t depth,
                                      double temperature);

// Returns (grad_values, grad_weights).
std::tuple<at::Tensor, at::Tensor> _half_permutation_apply_backward(
    const at::Tensor& grad, const at::Tensor& rows, const at::Tensor& weights,
    const at::Tensor& values, bool transpose);

// Checks of the CPU and CUDA host entries; `op` names the caller.
// Shapes, dtypes, devices and scalar arguments only: the checks that read
// every value (finite keys, rows in range) cost a pass each, so the CPU
// kernels fold them into their loops and call the functions below only to
// word the error.
void check_half_permutation_args(const char* op, const at::Tensor& keys,
                                 int64_t depth, int64_t num_samples,
                                 double temperature);
void check_apply_args(const char* op, const at::Tensor& rows,
                      const at::Tensor& weights, const at::Tensor& values);
void check_rows_in_range(const char* op, const at::Tensor& rows);
// quicksort_levels' checks (keys, values; the backward's per-level tensors).
void check_quicksort_args(const char* op, const at::Tensor& keys, const at::Tensor& values,
                          int64_t num_samples, double temperature);
void check_quicksort_backward_args(const char* op, at::TensorList grad_levels,
                                   const at::Tensor& keys, const at::Tensor& values,
                                   at::TensorList levels, at::TensorList rows,
                                   at::TensorList weights, double temperature);
// Stable ranks of the keys [rows, n] (any strides) within consecutive
// buckets of `bucket_size`: int64 [rows n], on the keys' device (a
// segmented sort; ties keep their order). The CUDA forward's first pass.
at::Tensor bucket_ranks(const at::Tensor& keys, int64_t bucket_size);
// log2 n, the levels of a quicksort of n (a power of two) keys.
int64_t quicksort_level_count(int64_t n);
// Tensor ops and one read-back (for the CUDA entries, where the kernels do
// not check): throws unless every row lies in its column's bucket.
void check_rows_in_buckets(const char* op, const at::Tensor& rows, int64_t bucket_size);
// Always throws: rows outside [0, n), or outside their column's bucket.
[[noreturn]] void fail_rows_outside_buckets(const char* op, const at::Tensor& rows,
                                            int64_t bucket_size);

}  // namespace detail
}  // namespace indexgrad
