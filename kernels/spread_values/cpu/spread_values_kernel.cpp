// CPU kernel of spread_values and its backward. Parallel over (batch row,
// chunk); within a chunk each tuple visits only the grid cells its cut-off
// ellipse touches (ChunkGrid), row by row, and weighs their points in
// vectorised loops; time and memory grow with the kept pairs, not k^2.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "kernels/spread_values/cpu/chunk_grid.h"
#include "kernels/spread_values/spread_values.h"
#include "kernels/spread_values/spread_values_math.h"

namespace indexgrad {
namespace {

// Per-thread scratch, reused across chunks and tuples.
struct Scratch {
  std::vector<double> w;  // the current tuple's weights, ranges in order
  std::vector<std::pair<int64_t, int64_t>> ranges;  // its grid ranges
  std::vector<double> acc;  // forward: value per grid position
  std::vector<double> g;    // backward: incoming gradient per grid position
};

// One tuple: its per-dimension terms relative to the nearest integer point
// (spread_values_math.h) and the cut-off on the total excess m - m0.
struct Tuple {
  int rank;
  DimTerm dim[kSpreadMaxRank];
  double mu[kSpreadMaxRank], sigma[kSpreadMaxRank];
  double max_excess;  // R^2, or infinity when dense

  template <typename scalar_t>
  Tuple(const scalar_t* mu_p, const scalar_t* sigma_p, int r, double r_sq)
      : rank(r), max_excess(r_sq) {
    for (int d = 0; d < rank; ++d) {
      mu[d] = static_cast<double>(mu_p[d]);
      sigma[d] = static_cast<double>(sigma_p[d]);
      dim[d] = DimTerm::Make(mu[d], sigma[d]);
    }
  }

  // Half-width in dimension d of the region where that dimension alone
  // stays within an excess `budget`: (t - mu)^2 / sigma - m0_d <= budget.
  double HalfWidth(int d, double budget) const {
    return std::sqrt((budget + dim[d].nearest_sq) * sigma[d]);
  }
};

// Weighs the distinct points [q0, q1) of the grid for tuple `tp`:
// w[i] = exp(-(m - m0) / 2) for point q0 + i, 0 beyond the cut-off. Returns
// the sum of the weights.
double weigh_range(const ChunkGrid& grid, const Tuple& tp, int64_t q0,
                   int64_t q1, double* w) {
  const int64_t len = q1 - q0;
  {
    const double* x = grid.coords(0) + q0;
    const DimTerm t = tp.dim[0];
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) w[i] = t.Excess(x[i]);
  }
  for (int d = 1; d < tp.rank; ++d) {
    const double* x = grid.coords(d) + q0;
    const DimTerm t = tp.dim[d];
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) w[i] += t.Excess(x[i]);
  }
  const double max_excess = tp.max_excess;
  double total = 0;
#pragma omp simd reduction(+ : total)
  for (int64_t i = 0; i < len; ++i) {
    const double e = w[i];
    const double v = e <= max_excess ? exp_nonpositive(-0.5 * e) : 0.0;
    w[i] = v;
    total += v;
  }
  return total;
}

// Weighs every distinct point within the tuple's cut-off into scratch.w
// (scratch.ranges records where they are); returns the total weight, the
// tuple's normaliser (1 or more when the chunk holds the tuple's nearest
// integer point, which sample_tuples guarantees; 0 when nothing is in reach).
//
// The cut-off m - m0 <= R^2 is an ellipse; the grid is visited one row of
// cells at a time, each row clipped to the band of coordinate 1 that the
// ellipse allows at that row's nearest coordinate 0.
double weigh_tuple(const ChunkGrid& grid, const Tuple& tp, Scratch& scratch) {
  scratch.ranges.clear();
  if (static_cast<int64_t>(scratch.w.size()) < grid.num_distinct()) {
    scratch.w.resize(grid.num_distinct());
  }
  double total = 0;
  int64_t cursor = 0;
  auto visit = [&](int64_t q0, int64_t q1) {
    total += weigh_range(grid, tp, q0, q1, scratch.w.data() + cursor);
    scratch.ranges.emplace_back(q0, q1);
    cursor += q1 - q0;
  };
  if (!std::isfinite(tp.max_excess)) {  // dense: every distinct point
    if (grid.num_distinct() > 0) visit(0, grid.num_distinct());
    return total;
  }
  const double h0 = tp.HalfWidth(0, tp.max_excess);
  const double lo0 = std::ceil(tp.mu[0] - h0), hi0 = std::floor(tp.mu[0] + h0);
  grid.ForEachRange(
      lo0, hi0,
      [&](double a, double b, double* lo1, double* hi1) {
        // The smallest excess of coordinate 0 over the integers in [a, b].
        const double t = std::min(std::max(tp.dim[0].t0, a), b);
        const double budget = tp.max_excess - tp.dim[0].Excess(t);
        if (budget < 0) return false;
        const double h1 = tp.HalfWidth(1, budget);
        *lo1 = std::ceil(tp.mu[1] - h1);
        *hi1 = std::floor(tp.mu[1] + h1);
        return true;
      },
      visit);
  return total;
}

struct Shape {
  int64_t batch, k, s, rank, chunk;
};

Shape shape_of(const at::Tensor& points, int64_t chunk) {
  return {points.size(0), points.size(1), points.size(2), points.size(3),
          chunk};
}

// Runs body(c, grid, scratch) for every chunk c (batch row major); grid and
// scratch belong to the calling thread.
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
      body(c, grid, scratch);
    }
  });
}

// out[c-th chunk] for every chunk.
template <typename scalar_t>
void forward(const Shape& sh, const int64_t* points, const scalar_t* mu_p,
             const scalar_t* sigma_p, const scalar_t* v_p, double r_sq,
             scalar_t* out_p) {
  const int rank = static_cast<int>(sh.rank);
  for_each_chunk(sh, points, [&](int64_t c, const ChunkGrid& grid,
                                 Scratch& scratch) {
    std::vector<double>& acc = scratch.acc;
    acc.assign(grid.num_distinct(), 0.0);
    for (int64_t i = 0; i < sh.chunk; ++i) {
      const int64_t t = c * sh.chunk + i;  // tuple id
      const Tuple tp(mu_p + t * rank, sigma_p + t * rank, rank, r_sq);
      const double total = weigh_tuple(grid, tp, scratch);
      if (total == 0) continue;  // no point in reach
      const double scale = static_cast<double>(v_p[t]) / total;
      const double* w = scratch.w.data();
      for (const auto& [q0, q1] : scratch.ranges) {
        double* a = acc.data() + q0;
#pragma omp simd
        for (int64_t q = 0; q < q1 - q0; ++q) a[q] += scale * w[q];
        w += q1 - q0;
      }
    }
    scalar_t* o = out_p + c * sh.chunk * sh.s;
    const int64_t* pos = grid.positions();
    for (int64_t j = 0; j < grid.size(); ++j) {
      o[j] = pos[j] < 0 ? scalar_t(0) : static_cast<scalar_t>(acc[pos[j]]);
    }
  });
}

// Gradients of every tuple (each tuple's own entries: no races).
template <typename scalar_t>
void backward(const Shape& sh, const int64_t* points, const scalar_t* mu_p,
              const scalar_t* sigma_p, const scalar_t* v_p,
              const scalar_t* g_p, double r_sq, scalar_t* gmu_p,
              scalar_t* gsigma_p, scalar_t* gv_p) {
  const int rank = static_cast<int>(sh.rank);
  for_each_chunk(sh, points, [&](int64_t c, const ChunkGrid& grid,
                                 Scratch& scratch) {
    // The incoming gradient of each distinct point, in grid order.
    const scalar_t* g_chunk = g_p + c * sh.chunk * sh.s;
    std::vector<double>& g = scratch.g;
    g.resize(grid.num_distinct());
    const int64_t* items = grid.items();
    for (int64_t q = 0; q < grid.num_distinct(); ++q) {
      g[q] = static_cast<double>(g_chunk[items[q]]);
    }
    for (int64_t i = 0; i < sh.chunk; ++i) {
      const int64_t t = c * sh.chunk + i;
      const Tuple tp(mu_p + t * rank, sigma_p + t * rank, rank, r_sq);
      const double total = weigh_tuple(grid, tp, scratch);
      if (total == 0) continue;  // no point in reach: zero gradients
      // dL/dv_i = sum_j p'_ij g_j
      double g_sum = 0;
      const double* w = scratch.w.data();
      for (const auto& [q0, q1] : scratch.ranges) {
        const double* gq = g.data() + q0;
#pragma omp simd reduction(+ : g_sum)
        for (int64_t q = 0; q < q1 - q0; ++q) g_sum += w[q] * gq[q];
        w += q1 - q0;
      }
      const double g_bar = g_sum / total;
      gv_p[t] = static_cast<scalar_t>(g_bar);
      // dL/dlog p_ij = v_i p'_ij (g_j - g_bar), and
      // dlog p_ij / dmu_d = (t_d - mu_d) / sigma_d,
      // dlog p_ij / dsigma_d = (t_d - mu_d)^2 / (2 sigma_d^2).
      double* cw = scratch.w.data();  // w_ij (g_j - g_bar), in place
      for (const auto& [q0, q1] : scratch.ranges) {
        const double* gq = g.data() + q0;
#pragma omp simd
        for (int64_t q = 0; q < q1 - q0; ++q) cw[q] *= gq[q] - g_bar;
        cw += q1 - q0;
      }
      const double v_over_total = static_cast<double>(v_p[t]) / total;
      for (int d = 0; d < rank; ++d) {
        double s1 = 0, s2 = 0;  // sum c_ij (t_d - mu_d), and squared
        const double* x = grid.coords(d);
        const double mu = tp.mu[d];
        const double* c_ij = scratch.w.data();
        for (const auto& [q0, q1] : scratch.ranges) {
          const double* xq = x + q0;
#pragma omp simd reduction(+ : s1, s2)
          for (int64_t q = 0; q < q1 - q0; ++q) {
            const double diff = xq[q] - mu;
            s1 += c_ij[q] * diff;
            s2 += c_ij[q] * diff * diff;
          }
          c_ij += q1 - q0;
        }
        // s1 or s2 = 0 (a tuple alone in reach) gives 0, even where
        // 1 / sigma^2 overflows.
        const double inv = tp.dim[d].inv_sigma;
        gmu_p[t * rank + d] =
            static_cast<scalar_t>(s1 == 0 ? 0.0 : v_over_total * s1 * inv);
        gsigma_p[t * rank + d] = static_cast<scalar_t>(
            s2 == 0 ? 0.0 : v_over_total * 0.5 * s2 * inv * inv);
      }
    }
  });
}

// R^2 of a chunk of n points, infinity when dense.
double max_excess(int64_t n, double tolerance) {
  return tolerance == 0 ? std::numeric_limits<double>::infinity()
                        : cutoff_sq(n, tolerance);
}

at::Tensor spread_values_cpu(const at::Tensor& points, const at::Tensor& means,
                             const at::Tensor& sigmas, const at::Tensor& values,
                             int64_t chunk_size, double tolerance) {
  const int64_t chunk = detail::check_spread_values_args(
      "spread_values", points, means, sigmas, values, chunk_size, tolerance);
  at::Tensor out = at::empty({points.size(0), points.size(1), points.size(2)},
                             values.options());
  if (out.numel() == 0) return out;
  const Shape sh = shape_of(points, chunk);
  const at::Tensor points_c = points.contiguous();
  const at::Tensor means_c = means.contiguous();
  const at::Tensor sigmas_c = sigmas.contiguous();
  const at::Tensor values_c = values.contiguous();
  const double r_sq = max_excess(sh.chunk * sh.s, tolerance);
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "spread_values_cpu", [&] {
    forward<scalar_t>(sh, points_c.data_ptr<int64_t>(),
                      means_c.data_ptr<scalar_t>(),
                      sigmas_c.data_ptr<scalar_t>(),
                      values_c.data_ptr<scalar_t>(), r_sq,
                      out.data_ptr<scalar_t>());
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
  const double r_sq = max_excess(sh.chunk * sh.s, tolerance);
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "spread_values_backward_cpu",
                             [&] {
    backward<scalar_t>(sh, points_c.data_ptr<int64_t>(),
                       means_c.data_ptr<scalar_t>(),
                       sigmas_c.data_ptr<scalar_t>(),
                       values_c.data_ptr<scalar_t>(),
                       grad_c.data_ptr<scalar_t>(), r_sq,
                       grad_means.data_ptr<scalar_t>(),
                       grad_sigmas.data_ptr<scalar_t>(),
                       grad_values.data_ptr<scalar_t>());
  });
  return {grad_means, grad_sigmas, grad_values};
}

}  // namespace

TORCH_LIBRARY_IMPL(indexgrad, CPU, m) {
  m.impl("spread_values", TORCH_FN(spread_values_cpu));
  m.impl("_spread_values_backward", TORCH_FN(spread_values_backward_cpu));
}

}  // namespace indexgrad
