// spread_values: the sparse layer's proportions (Bloem et al. 2018, section
// 2.1 and Algorithm 1) applied to the tuple values, without materialising
// the proportion matrix.
//
// Each continuous tuple i (mean mu_i, per-dimension *variance* sigma_i)
// gives every integer point j of its chunk the proportion
//   p_ij  = exp(-1/2 sum_d (t_jd - mu_id)^2 / sigma_id)
//   p'_ij = p_ij / sum_k p_ik          (sum over the chunk's distinct points)
// where a point that occurs more than once in a chunk counts once (its first
// occurrence; the copies get proportion 0, found by exact tuple comparison).
// The value of point j is  v'_j = sum_i p'_ij v_i.
//
// points  [batch, k, s, r] int64: the s points sampled for each tuple
//         (sample_tuples), the first 2^r of them its floor/ceil neighbours.
// means   [batch, k, r], sigmas [batch, k, r] (> 0), values [batch, k]:
//         one float dtype.
// chunk_size: tuples sharing a chunk (0 or k: all tuples of a batch row, the
//         paper's definition); k must be a multiple of it.
// tolerance: 0 computes every (tuple, point) pair of a chunk (dense). > 0
//         skips the pairs with m_ij > m0_i + R^2, where m is the squared
//         Mahalanobis distance, m0_i its minimum (at a neighbour of tuple i)
//         and R^2 = 2 ln(n / tolerance) for n points in the chunk: every
//         skipped pair weighs below exp(-R^2/2) = tolerance / n of the
//         largest, so the skipped share of each normaliser is below
//         `tolerance`. Pairs are found through a grid on the first two
//         coordinates: work and memory grow with the pairs kept, not k^2.
// returns point values [batch, k, s]; differentiable in means, sigmas and
// values (backward op `_spread_values_backward`).
//
// Computed in log space relative to m0_i: the largest weight of every tuple
// is exactly 1, so no 0/0 however small sigma is or far the points are.
// Arithmetic: double inputs in double; float inputs in float (weights, sums,
// gradients' sums; about 1e-6 relative) when every coordinate of a chunk is
// exact in float (|t| <= 2^24), else in double. The CPU kernel is built for
// AVX2 and for baseline x86-64 and picks one at load time.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

#include "kernels/spread_values/spread_values_grid.h"

namespace indexgrad {

at::Tensor spread_values(const at::Tensor& points, const at::Tensor& means,
                         const at::Tensor& sigmas, const at::Tensor& values,
                         int64_t chunk_size, double tolerance);

namespace detail {

// Returns (grad_means, grad_sigmas, grad_values).
std::tuple<at::Tensor, at::Tensor, at::Tensor> _spread_values_backward(
    const at::Tensor& grad, const at::Tensor& points, const at::Tensor& means,
    const at::Tensor& sigmas, const at::Tensor& values, int64_t chunk_size,
    double tolerance);

// Checks shared by all kernels; returns the effective chunk size.
int64_t check_spread_values_args(const char* op, const at::Tensor& points,
                                 const at::Tensor& means,
                                 const at::Tensor& sigmas,
                                 const at::Tensor& values, int64_t chunk_size,
                                 double tolerance);

// The backward's incoming gradient: [batch, k, samples] like points, the
// dtype of values, the device of points.
void check_spread_values_grad(const char* op, const at::Tensor& grad,
                              const at::Tensor& points, const at::Tensor& values);

// The per-thread bodies' view of points [batch, k, s, rank] in chunks of
// `chunk` tuples (>= 1), with the cut-off's excess bound for `tolerance`.
SpreadLayout spread_layout(const at::Tensor& points, int64_t chunk, double tolerance);

// The cell grid of the CUDA kernels for large chunks (spread_values_grid.h)
// for points [batch, k, s, rank] and `layout`: the points' bounding box,
// cells of side `cell` (0: about the reach of the cut-off at the mean
// variance), doubled until every key fits in int64. Reads the points'
// extremes and the variances' mean back to the host (device-agnostic ops).
SpreadGrid make_spread_grid(const at::Tensor& points, const at::Tensor& sigmas,
                            const SpreadLayout& layout, int64_t cell = 0);

// Chunks of at least this many points take the grid on the GPU (with a
// cut-off; a dense chunk visits every point either way).
constexpr int64_t kSpreadGridMinPoints = 512;

}  // namespace detail
}  // namespace indexgrad
