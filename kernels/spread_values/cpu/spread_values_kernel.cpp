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
  double w;   // relative weight exp(-(m - m0) / 2)
};

// Collects the kept pairs of one tuple (mu, sigma) into `kept`; returns
// their total weight (>= 1: the nearest neighbour weighs exactly 1).
template <typename scalar_t>
double collect_pairs(const ChunkGrid& grid, const int64_t* chunk_points,
                     const scalar_t* mu, const scalar_t* sigma, int rank,
                     int64_t own_first, double tolerance,
                     std::vector<Pair>& kept) {
  kept.clear();
  const int64_t num_neighbours = int64_t(1) << rank;
  double m0 = std::numeric_limits<double>::infinity();
  for (int64_t q = 0; q < num_neighbours; ++q) {
    m0 = std::min(m0, mahalanobis_sq(chunk_points + (own_first + q) * rank, mu,
                                     sigma, rank));
  }
  double total = 0;
  auto visit = [&](int64_t j, double threshold) {
    const double m = mahalanobis_sq(chunk_points + j * rank, mu, sigma, rank);
    if (m <= threshold) {
      const double w = relative_weight(m, m0);
      kept.push_back({j, w});
      total += w;
    }
  };
  if (tolerance == 0) {
    grid.ForEach([&](int64_t j) {
      visit(j, std::numeric_limits<double>::infinity());
    });
  } else {
    const double threshold = m0 + cutoff_sq(grid.size(), tolerance);
    double lo[2], hi[2];
    for (int d = 0; d < std::min(rank, 2); ++d) {
      const double h = std::sqrt(threshold * static_cast<double>(sigma[d]));
      lo[d] = static_cast<double>(mu[d]) - h;
      hi[d] = static_cast<double>(mu[d]) + h;
    }
    grid.ForEachInBox(lo, hi, [&](int64_t j) { visit(j, threshold); });
  }
  return total;
}

struct Shape {
  int64_t batch, k, s, rank, chunk;
};

Shape shape_of(const at::Tensor& points, int64_t chunk) {
  return {points.size(0), points.size(1), points.size(2), points.size(3),
          chunk};
}

// Runs body(b, g, grid, chunk_points, first_tuple) for every chunk.
template <typename Body>
void for_each_chunk(const Shape& sh, const int64_t* points, Body&& body) {
  const int64_t chunks_per_row = sh.k / sh.chunk;
  const int64_t chunk_numel = sh.chunk * sh.s * sh.rank;
  at::parallel_for(0, sh.batch * chunks_per_row, 1, [&](int64_t c0,
                                                          int64_t c1) {
    ChunkGrid grid;
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t* chunk_points = points + c * chunk_numel;
      grid.Build(chunk_points, sh.chunk * sh.s, static_cast<int>(sh.rank));
      body(c, grid, chunk_points);
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
                       const int64_t* chunk_points) {
                     std::vector<Pair> kept;
                     std::vector<double> acc(sh.chunk * sh.s, 0.0);
                     for (int64_t i = 0; i < sh.chunk; ++i) {
                       const int64_t t = c * sh.chunk + i;  // tuple id
                       const double total = collect_pairs(
                           grid, chunk_points, mu_p + t * sh.rank,
                           sigma_p + t * sh.rank, static_cast<int>(sh.rank),
                           i * sh.s, tolerance, kept);
                       const double scale = static_cast<double>(v_p[t]) / total;
                       for (const Pair& p : kept) acc[p.j] += scale * p.w;
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
                       const int64_t* chunk_points) {
      std::vector<Pair> kept;
      const scalar_t* g = g_p + c * sh.chunk * sh.s;  // [chunk * s]
      const int rank = static_cast<int>(sh.rank);
      for (int64_t i = 0; i < sh.chunk; ++i) {
        const int64_t t = c * sh.chunk + i;
        const scalar_t* mu = mu_p + t * rank;
        const scalar_t* sigma = sigma_p + t * rank;
        const double total = collect_pairs(grid, chunk_points, mu, sigma, rank,
                                           i * sh.s, tolerance, kept);
        // dL/dv_i = sum_j p'_ij g_j
        double g_bar = 0;
        for (const Pair& p : kept) g_bar += p.w / total * g[p.j];
        gv_p[t] = static_cast<scalar_t>(g_bar);
        // dL/dlog p_ij = v_i p'_ij (g_j - g_bar); chain through m_ij.
        const double v = static_cast<double>(v_p[t]);
        double gmu[8] = {0}, gsigma[8] = {0};
        for (const Pair& p : kept) {
          const double c_ij = v * (p.w / total) * (g[p.j] - g_bar);
          if (c_ij == 0) continue;
          const int64_t* pt = chunk_points + p.j * rank;
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
