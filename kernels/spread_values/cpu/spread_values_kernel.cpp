// CPU kernel of spread_values and its backward. Parallel over (batch row,
// chunk); within a chunk each tuple visits only the points within its
// cut-off (ChunkGrid), so time and memory grow with the kept pairs.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/spread_values/cpu/chunk_grid.h"
#include "kernels/spread_values/spread_values.h"
#include "kernels/spread_values/spread_values_math.h"

namespace indexgrad {
namespace {

struct Pair {
  int64_t j;  // point index within the chunk
  double w;   // relative weight exp(-(m - m0) / 2), in (0, 1]
};

// Per-thread scratch, reused across chunks and tuples (small chunks would
// otherwise spend their time in malloc): a tuple's kept pairs; the separable
// factors of the weight in the first two dimensions, tabulated over the
// integer range the cut-off allows; a chunk's point values.
struct Scratch {
  std::vector<Pair> pairs;  // capacity: the chunk's distinct points
  int64_t num_kept = 0;     // pairs[0, num_kept) are this tuple's
  std::vector<double> table[2];
  std::vector<double> acc;
};

// Collects the kept pairs of one tuple (mu, sigma) into scratch.pairs; returns
// their total weight (1 or more when the chunk holds the tuple's nearest
// integer point, which sample_tuples guarantees).
//
// The density factorises over dimensions (diagonal covariance), and the
// nearest lattice point minimises every dimension separately, so
//   w = prod_d exp(-((t_d - mu_d)^2 / sigma_d - m0_d) / 2),
//   m0_d = min over floor/ceil(mu_d) of (t - mu_d)^2 / sigma_d,
// each factor <= 1. The factors of dimensions 0 and 1 come from tables
// (one exp per integer coordinate, not per pair); further dimensions are
// evaluated per pair. A pair is kept when w >= tolerance / n, i.e.
// m - m0 <= R^2 = 2 ln(n / tolerance).
template <typename scalar_t>
double collect_pairs(const ChunkGrid& grid, const int64_t* chunk_points,
                     const scalar_t* mu, const scalar_t* sigma, int rank,
                     double tolerance, Scratch& scratch) {
  if (static_cast<int64_t>(scratch.pairs.size()) < grid.num_distinct()) {
    scratch.pairs.resize(grid.num_distinct());
  }
  Pair* kept = scratch.pairs.data();
  int64_t num_kept = 0;
  scratch.num_kept = 0;
  // Per-dimension terms are computed with the same expression everywhere
  // (diff * diff * inv_sigma), so the nearest point's excess is exactly 0
  // even when sigma is tiny and the terms are huge; terms are clamped at 0.
  double m0[8], inv_sigma[8];
  for (int d = 0; d < rank; ++d) {
    const double u = static_cast<double>(mu[d]);
    inv_sigma[d] = 1.0 / static_cast<double>(sigma[d]);
    const double lo = std::floor(u) - u, hi = std::ceil(u) - u;
    m0[d] = std::min(lo * lo * inv_sigma[d], hi * hi * inv_sigma[d]);
  }
  const bool dense = tolerance == 0;
  const double w_min = dense ? 0.0 : tolerance / static_cast<double>(grid.size());
  const double r_sq = dense ? 0.0 : cutoff_sq(grid.size(), tolerance);
  const int grid_dims = std::min(rank, 2);
  int64_t first[2] = {0, 0}, last[2] = {0, 0};
  double box_lo[2], box_hi[2];
  for (int d = 0; d < grid_dims; ++d) {
    const double u = static_cast<double>(mu[d]);
    const double s = static_cast<double>(sigma[d]);
    if (dense) {
      first[d] = grid.lower(d);
      last[d] = grid.upper(d);
    } else {
      // (t - u)^2 / s - m0_d <= R^2 bounds dimension d on its own.
      const double h = std::sqrt((r_sq + m0[d]) * s);
      first[d] = std::max<int64_t>(grid.lower(d),
                                   static_cast<int64_t>(std::ceil(u - h)));
      last[d] = std::min<int64_t>(grid.upper(d),
                                  static_cast<int64_t>(std::floor(u + h)));
    }
    if (first[d] > last[d]) return 0.0;
    box_lo[d] = static_cast<double>(first[d]);
    box_hi[d] = static_cast<double>(last[d]);
  }
  // Tables cost one exp per coordinate of the box; evaluating pairs costs one
  // exp per candidate point. Tabulate when the box is densely populated
  // (small n, wide variances), evaluate per pair when it is sparse (large n).
  double box_cells = 1, box_perimeter = 0, span_cells = 1;
  for (int d = 0; d < grid_dims; ++d) {
    box_cells *= static_cast<double>(last[d] - first[d] + 1);
    box_perimeter += static_cast<double>(last[d] - first[d] + 1);
    span_cells *= static_cast<double>(grid.upper(d) - grid.lower(d) + 1);
  }
  const double candidates =
      box_cells * static_cast<double>(grid.num_distinct()) / span_cells;
  const bool use_tables = box_perimeter < candidates;
  if (use_tables) {
    for (int d = 0; d < grid_dims; ++d) {
      std::vector<double>& table = scratch.table[d];
      table.resize(last[d] - first[d] + 1);
      const double u = static_cast<double>(mu[d]);
      for (int64_t t = first[d]; t <= last[d]; ++t) {
        const double diff = static_cast<double>(t) - u;
        table[t - first[d]] =
            std::exp(-0.5 * std::max(0.0, diff * diff * inv_sigma[d] - m0[d]));
      }
    }
  }
  // Excess of m over m0 allowed by the cut-off (infinite when dense).
  const double max_excess =
      dense ? std::numeric_limits<double>::infinity() : r_sq;
  const double* table0 = scratch.table[0].data();
  const double* table1 = scratch.table[1].data();
  double total = 0;
  grid.ForEachInBox(box_lo, box_hi, [&](int64_t j) {
    const int64_t* t = chunk_points + j * rank;
    if (t[0] < first[0] || t[0] > last[0]) return;
    if (grid_dims == 2 && (t[1] < first[1] || t[1] > last[1])) return;
    double w;
    if (use_tables) {
      w = table0[t[0] - first[0]];
      if (grid_dims == 2) w *= table1[t[1] - first[1]];
      if (rank > 2) {
        double rest = 0;
        for (int d = 2; d < rank; ++d) {
          const double diff =
              static_cast<double>(t[d]) - static_cast<double>(mu[d]);
          rest += std::max(0.0, diff * diff * inv_sigma[d] - m0[d]);
        }
        w *= std::exp(-0.5 * rest);
      }
    } else {
      double excess = 0;  // m - m0, summed per dimension (each term >= 0)
      for (int d = 0; d < rank; ++d) {
        const double diff =
            static_cast<double>(t[d]) - static_cast<double>(mu[d]);
        excess += std::max(0.0, diff * diff * inv_sigma[d] - m0[d]);
      }
      if (excess > max_excess) return;
      w = std::exp(-0.5 * excess);
    }
    if (w > 0 && w >= w_min) {
      kept[num_kept++] = {j, w};
      total += w;
    }
  });
  scratch.num_kept = num_kept;
  return total;
}

struct Shape {
  int64_t batch, k, s, rank, chunk;
};

Shape shape_of(const at::Tensor& points, int64_t chunk) {
  return {points.size(0), points.size(1), points.size(2), points.size(3),
          chunk};
}

// Runs body(c, grid, chunk_points, scratch) for every chunk c (batch row
// major); grid and scratch belong to the calling thread.
template <typename Body>
void for_each_chunk(const Shape& sh, const int64_t* points, Body&& body) {
  const int64_t chunks_per_row = sh.k / sh.chunk;
  const int64_t chunk_numel = sh.chunk * sh.s * sh.rank;
  at::parallel_for(0, sh.batch * chunks_per_row, 1, [&](int64_t c0,
                                                          int64_t c1) {
    ChunkGrid grid;
    Scratch scratch;
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t* chunk_points = points + c * chunk_numel;
      grid.Build(chunk_points, sh.chunk * sh.s, static_cast<int>(sh.rank));
      body(c, grid, chunk_points, scratch);
    }
  });
}

at::Tensor spread_values_cpu(const at::Tensor& points, const at::Tensor& means,
                             const at::Tensor& sigmas, const at::Tensor& values,
                             int64_t chunk_size, double tolerance) {
  const int64_t chunk = detail::check_spread_values_args(
      "spread_values", points, means, sigmas, values, chunk_size, tolerance);
  at::Tensor out = at::zeros({points.size(0), points.size(1), points.size(2)},
                             values.options());
  if (out.numel() == 0) return out;
  const Shape sh = shape_of(points, chunk);
  const at::Tensor points_c = points.contiguous();
  const at::Tensor means_c = means.contiguous();
  const at::Tensor sigmas_c = sigmas.contiguous();
  const at::Tensor values_c = values.contiguous();
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "spread_values_cpu", [&] {
    const scalar_t* mu_p = means_c.data_ptr<scalar_t>();
    const scalar_t* sigma_p = sigmas_c.data_ptr<scalar_t>();
    const scalar_t* v_p = values_c.data_ptr<scalar_t>();
    scalar_t* out_p = out.data_ptr<scalar_t>();
    for_each_chunk(sh, points_c.data_ptr<int64_t>(),
                   [&](int64_t c, const ChunkGrid& grid,
                       const int64_t* chunk_points, Scratch& scratch) {
                     std::vector<double>& acc = scratch.acc;
                     acc.assign(sh.chunk * sh.s, 0.0);
                     for (int64_t i = 0; i < sh.chunk; ++i) {
                       const int64_t t = c * sh.chunk + i;  // tuple id
                       const double total = collect_pairs(
                           grid, chunk_points, mu_p + t * sh.rank,
                           sigma_p + t * sh.rank, static_cast<int>(sh.rank),
                           tolerance, scratch);
                       if (total == 0) continue;  // no point in reach
                       const double scale = static_cast<double>(v_p[t]) / total;
                       const Pair* kept = scratch.pairs.data();
                       for (int64_t q = 0; q < scratch.num_kept; ++q) {
                         acc[kept[q].j] += scale * kept[q].w;
                       }
                     }
                     scalar_t* o = out_p + c * sh.chunk * sh.s;
                     for (int64_t j = 0; j < sh.chunk * sh.s; ++j) {
                       o[j] = static_cast<scalar_t>(acc[j]);
                     }
                   });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> spread_values_backward_cpu(
    const at::Tensor& grad, const at::Tensor& points, const at::Tensor& means,
    const at::Tensor& sigmas, const at::Tensor& values, int64_t chunk_size,
    double tolerance) {
  const char* op = "_spread_values_backward";
  const int64_t chunk = detail::check_spread_values_args(
      op, points, means, sigmas, values, chunk_size, tolerance);
  TORCH_CHECK(grad.dim() == 3 && grad.size(0) == points.size(0) &&
                  grad.size(1) == points.size(1) &&
                  grad.size(2) == points.size(2),
              op, ": grad must be [batch, k, samples] like points, got ",
              grad.sizes());
  TORCH_CHECK(grad.scalar_type() == values.scalar_type(), op,
              ": grad must have the dtype of values, got ", grad.scalar_type());
  at::Tensor grad_means = at::zeros_like(means, at::MemoryFormat::Contiguous);
  at::Tensor grad_sigmas = at::zeros_like(sigmas, at::MemoryFormat::Contiguous);
  at::Tensor grad_values = at::zeros_like(values, at::MemoryFormat::Contiguous);
  if (grad.numel() == 0) return {grad_means, grad_sigmas, grad_values};
  const Shape sh = shape_of(points, chunk);
  const at::Tensor points_c = points.contiguous();
  const at::Tensor means_c = means.contiguous();
  const at::Tensor sigmas_c = sigmas.contiguous();
  const at::Tensor values_c = values.contiguous();
  const at::Tensor grad_c = grad.contiguous();
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "spread_values_backward_cpu",
                             [&] {
    const scalar_t* mu_p = means_c.data_ptr<scalar_t>();
    const scalar_t* sigma_p = sigmas_c.data_ptr<scalar_t>();
    const scalar_t* v_p = values_c.data_ptr<scalar_t>();
    const scalar_t* g_p = grad_c.data_ptr<scalar_t>();
    scalar_t* gmu_p = grad_means.data_ptr<scalar_t>();
    scalar_t* gsigma_p = grad_sigmas.data_ptr<scalar_t>();
    scalar_t* gv_p = grad_values.data_ptr<scalar_t>();
    for_each_chunk(sh, points_c.data_ptr<int64_t>(),
                   [&](int64_t c, const ChunkGrid& grid,
                       const int64_t* chunk_points, Scratch& scratch) {
      const scalar_t* g = g_p + c * sh.chunk * sh.s;  // [chunk * s]
      const int rank = static_cast<int>(sh.rank);
      for (int64_t i = 0; i < sh.chunk; ++i) {
        const int64_t t = c * sh.chunk + i;
        const scalar_t* mu = mu_p + t * rank;
        const scalar_t* sigma = sigma_p + t * rank;
        const double total = collect_pairs(grid, chunk_points, mu, sigma, rank,
                                           tolerance, scratch);
        if (total == 0) continue;  // no point in reach: zero gradients
        const Pair* kept = scratch.pairs.data();
        const Pair* kept_end = kept + scratch.num_kept;
        // dL/dv_i = sum_j p'_ij g_j
        double g_bar = 0;
        for (const Pair* p = kept; p != kept_end; ++p) {
          g_bar += p->w / total * g[p->j];
        }
        gv_p[t] = static_cast<scalar_t>(g_bar);
        // dL/dlog p_ij = v_i p'_ij (g_j - g_bar); chain through m_ij.
        const double v = static_cast<double>(v_p[t]);
        double gmu[8] = {0}, gsigma[8] = {0};
        for (const Pair* p = kept; p != kept_end; ++p) {
          const double c_ij = v * (p->w / total) * (g[p->j] - g_bar);
          if (c_ij == 0) continue;
          const int64_t* pt = chunk_points + p->j * rank;
          for (int d = 0; d < rank; ++d) {
            const double s = static_cast<double>(sigma[d]);
            const double diff = static_cast<double>(pt[d]) -
                                static_cast<double>(mu[d]);
            gmu[d] += c_ij * diff / s;
            gsigma[d] += c_ij * 0.5 * diff * diff / (s * s);
          }
        }
        for (int d = 0; d < rank; ++d) {
          gmu_p[t * rank + d] = static_cast<scalar_t>(gmu[d]);
          gsigma_p[t * rank + d] = static_cast<scalar_t>(gsigma[d]);
        }
      }
    });
  });
  return {grad_means, grad_sigmas, grad_values};
}

}  // namespace

TORCH_LIBRARY_IMPL(indexgrad, CPU, m) {
  m.impl("spread_values", TORCH_FN(spread_values_cpu));
  m.impl("_spread_values_backward", TORCH_FN(spread_values_backward_cpu));
}

}  // namespace indexgrad
