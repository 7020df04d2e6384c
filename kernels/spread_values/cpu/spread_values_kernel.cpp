// CPU kernel of spread_values and its backward. Parallel over (batch row,
// chunk); within a chunk each tuple visits only the grid cells its cut-off
// ellipse touches (ChunkGrid), row by row, and weighs their points in
// vectorised loops; time and memory grow with the kept pairs, not k^2.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/common/vector_clones.h"
#include "kernels/spread_values/cpu/chunk_grid.h"
#include "kernels/spread_values/cpu/tiny_chunk.h"
#include "kernels/spread_values/spread_values.h"
#include "kernels/spread_values/spread_values_math.h"

namespace indexgrad {
namespace {

// Loops over a grid range run to a multiple of kLanes entries (the widest
// vector), reading past the range into the grid's padding and weighing the
// extra entries 0: no scalar remainder loops (ranges are short, ~25 points).
constexpr int64_t kLanes = 8;
static_assert(kLanes <= ChunkGrid::kPadding && kLanes <= TinyChunk::kPadding,
              "ranges are padded into the grid");
inline int64_t padded(int64_t len) { return (len + kLanes - 1) / kLanes * kLanes; }

// Per-thread scratch for compute type T, reused across chunks and tuples.
template <typename T>
struct Scratch {
  // The current tuple's points in reach, its grid ranges one after the
  // other (each padded to kLanes): weights; backward also copies their
  // incoming gradients and offsets t_d - mu_d, so that its sums run over
  // contiguous memory with one horizontal sum per tuple, not per range.
  std::vector<T> w, g_in, diff[kMaxTupleRank];
  std::vector<std::pair<int64_t, int64_t>> ranges;  // its grid ranges
  std::vector<T> acc;  // forward: value per grid position
  std::vector<T> g;    // backward: incoming gradient per grid position

  void Reserve(int64_t size, int rank, bool backward) {
    auto grow = [size](std::vector<T>& v) {
      if (static_cast<int64_t>(v.size()) < size) v.resize(size);
    };
    grow(w);
    if (!backward) return;
    grow(g_in);
    for (int d = 0; d < rank; ++d) grow(diff[d]);
  }
};

// A tuple's points in reach: how many entries of Scratch's arrays (padding
// included) and their total weight.
template <typename T>
struct Reach {
  int64_t len;
  T total;
};

// One tuple in compute type T: its per-dimension terms relative to the
// nearest integer point (spread_values_math.h) and the cut-off on the total
// excess m - m0.
template <typename T>
struct Tuple {
  int rank;
  DimTerm<T> dim[kMaxTupleRank];
  double mu[kMaxTupleRank], sigma[kMaxTupleRank];
  T max_excess;  // R^2, or infinity when dense

  template <typename scalar_t>
  Tuple(const scalar_t* mu_p, const scalar_t* sigma_p, int r, double r_sq)
      : rank(r), max_excess(static_cast<T>(r_sq)) {
    for (int d = 0; d < rank; ++d) {
      mu[d] = static_cast<double>(mu_p[d]);
      sigma[d] = static_cast<double>(sigma_p[d]);
      dim[d] = DimTerm<T>::Make(mu[d], sigma[d]);
    }
    if (rank == 1) {  // the grid's second dimension, never used at rank 1
      mu[1] = 0, sigma[1] = 1, dim[1] = DimTerm<T>::Make(0, 1);
    }
  }

  // Half-width in dimension d of the region where that dimension alone
  // stays within an excess `budget`: (t - mu)^2 / sigma - m0_d <= budget.
  double HalfWidth(int d, double budget) const {
    const double diff = static_cast<double>(dim[d].t0) - mu[d];
    return std::sqrt(budget * sigma[d] + diff * diff);
  }
};

// Weighs the distinct points [q0, q1) of the grid for tuple `tp` into
// scratch.w[at, at + padded(q1 - q0)): exp(-(m - m0) / 2), 0 beyond the
// cut-off and in the padding; kBackward also copies g and t - mu. kRank: the
// tuple rank, or 0 for any.
template <typename T, int kRank, bool kBackward, typename Grid>
void weigh_range(const Grid& grid, const Tuple<T>& tp, int64_t q0,
                 int64_t q1, const T* g, Scratch<T>& scratch, int64_t at) {
  const int64_t in_range = q1 - q0;
  const int64_t len = padded(in_range);
  const T max_excess = tp.max_excess;
  T* w = scratch.w.data() + at;
  if constexpr (kRank == 1 || kRank == 2) {
    const T* x0 = grid.template coords<T>(0) + q0;
    const T* x1 = grid.template coords<T>(kRank - 1) + q0;
    const DimTerm<T> d0 = tp.dim[0], d1 = tp.dim[kRank - 1];
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) {
      T e = d0.Excess(x0[i]);
      if constexpr (kRank == 2) e += d1.Excess(x1[i]);
      w[i] = e <= max_excess ? exp_nonpositive(T(-0.5) * e) : T(0);
    }
  } else {
    for (int d = 0; d < tp.rank; ++d) {
      const T* x = grid.template coords<T>(d) + q0;
      const DimTerm<T> t = tp.dim[d];
      if (d == 0) {
#pragma omp simd
        for (int64_t i = 0; i < len; ++i) w[i] = t.Excess(x[i]);
      } else {
#pragma omp simd
        for (int64_t i = 0; i < len; ++i) w[i] += t.Excess(x[i]);
      }
    }
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) {
      const T e = w[i];
      w[i] = e <= max_excess ? exp_nonpositive(T(-0.5) * e) : T(0);
    }
  }
  // The padding holds the next range's points (or the grid's zeros): not
  // this range's.
  for (int64_t i = in_range; i < len; ++i) w[i] = T(0);
  if constexpr (kBackward) {
    std::copy(g + q0, g + q0 + len, scratch.g_in.data() + at);
    for (int d = 0; d < tp.rank; ++d) {
      const T* x = grid.template coords<T>(d) + q0;
      const T mu = static_cast<T>(tp.mu[d]);
      T* out = scratch.diff[d].data() + at;
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) out[i] = x[i] - mu;
    }
  }
}

// Weighs every distinct point within the tuple's cut-off into scratch.w
// (scratch.ranges records where they are); returns the total weight, the
// tuple's normaliser (1 or more when the chunk holds the tuple's nearest
// integer point, which sample_tuples guarantees; 0 when nothing is in reach).
//
// The cut-off m - m0 <= R^2 is an ellipse; the grid is visited one row of
// cells at a time, each row clipped to the band of coordinate 1 that the
// ellipse allows at that row's nearest coordinate 0.
template <typename T, int kRank, bool kBackward = false, typename Grid>
Reach<T> weigh_tuple(const Grid& grid, const Tuple<T>& tp,
                     Scratch<T>& scratch, const T* g = nullptr) {
  scratch.ranges.clear();
  int64_t cursor = 0;
  auto visit = [&](int64_t q0, int64_t q1) {
    const int64_t need = cursor + padded(q1 - q0);
    scratch.Reserve(std::max(need, grid.num_distinct() + kLanes), tp.rank,
                    kBackward);
    weigh_range<T, kRank, kBackward>(grid, tp, q0, q1, g, scratch, cursor);
    scratch.ranges.emplace_back(q0, q1);
    cursor = need;
  };
  if (Grid::kOneRange || !std::isfinite(tp.max_excess)) {
    // Every distinct point (the cut-off still applies in weigh_range).
    if (grid.num_distinct() > 0) visit(0, grid.num_distinct());
  } else if constexpr (!Grid::kOneRange) {
    const double r_sq = static_cast<double>(tp.max_excess);
    const double h0 = tp.HalfWidth(0, r_sq);
    const double lo0 = std::ceil(tp.mu[0] - h0);
    const double hi0 = std::floor(tp.mu[0] + h0);
    const DimTerm<double> dim0 = DimTerm<double>::Make(tp.mu[0], tp.sigma[0]);
    grid.ForEachRange(
        lo0, hi0,
        [&](double a, double b, double* lo1, double* hi1) {
          // The smallest excess of coordinate 0 over the integers in [a, b].
          const double t = std::min(std::max(dim0.t0, a), b);
          const double budget = r_sq - dim0.Excess(t);
          if (budget < 0) return false;
          const double h1 = tp.HalfWidth(1, budget);
          *lo1 = std::ceil(tp.mu[1] - h1);
          *hi1 = std::floor(tp.mu[1] + h1);
          return true;
        },
        visit);
  }
  T total = 0;
  const T* w = scratch.w.data();
#pragma omp simd reduction(+ : total)
  for (int64_t i = 0; i < cursor; ++i) total += w[i];
  return {cursor, total};
}

struct Shape {
  int64_t batch, k, s, rank, chunk;
};

Shape shape_of(const at::Tensor& points, int64_t chunk) {
  return {points.size(0), points.size(1), points.size(2), points.size(3),
          chunk};
}

// The op's inputs and outputs as raw pointers (outputs null in forward's
// gradient slots and vice versa).
template <typename scalar_t>
struct Args {
  Shape sh;
  const scalar_t *mu, *sigma, *v, *g;  // g: backward's incoming gradient
  double r_sq;
  scalar_t *out, *gmu, *gsigma, *gv;
};

// Forward of chunk c: point values of its points.
template <typename scalar_t, typename T, int kRank, typename Grid>
void forward_chunk(const Args<scalar_t>& a, int64_t c, const Grid& grid,
                   Scratch<T>& scratch) {
  const int rank = static_cast<int>(a.sh.rank);
  std::vector<T>& acc = scratch.acc;
  acc.assign(grid.num_distinct() + Grid::kPadding, T(0));
  for (int64_t i = 0; i < a.sh.chunk; ++i) {
    const int64_t t = c * a.sh.chunk + i;  // tuple id
    const Tuple<T> tp(a.mu + t * rank, a.sigma + t * rank, rank, a.r_sq);
    const T total = weigh_tuple<T, kRank>(grid, tp, scratch).total;
    if (total == 0) continue;  // no point in reach
    const T scale = static_cast<T>(static_cast<double>(a.v[t]) / total);
    const T* w = scratch.w.data();
    for (const auto& [q0, q1] : scratch.ranges) {
      T* out = acc.data() + q0;
      const int64_t len = padded(q1 - q0);
#pragma omp simd
      for (int64_t q = 0; q < len; ++q) out[q] += scale * w[q];
      w += len;
    }
  }
  scalar_t* o = a.out + c * a.sh.chunk * a.sh.s;
  const int64_t* pos = grid.positions();
  for (int64_t j = 0; j < grid.size(); ++j) {
    o[j] = pos[j] < 0 ? scalar_t(0) : static_cast<scalar_t>(acc[pos[j]]);
  }
}

// The backward's sums over a tuple's points in reach (scratch, len entries):
// with c_ij = w_ij (g_j - g_bar),
//   s1[d] = sum_j c_ij (t_jd - mu_d),   s2[d] = sum_j c_ij (t_jd - mu_d)^2,
// since dL/dlog p_ij = v_i p'_ij (g_j - g_bar) = v_i / total * c_ij,
// dlog p_ij / dmu_d = (t_d - mu_d) / sigma_d and
// dlog p_ij / dsigma_d = (t_d - mu_d)^2 / (2 sigma_d^2).
template <typename T, int kRank>
void offset_moments(const Scratch<T>& scratch, int64_t len, int rank, T g_bar,
                    T* s1, T* s2) {
  const T* w = scratch.w.data();
  const T* g_in = scratch.g_in.data();
  if constexpr (kRank == 2) {  // both dimensions in one pass
    const T* e0 = scratch.diff[0].data();
    const T* e1 = scratch.diff[1].data();
    T a0 = 0, b0 = 0, a1 = 0, b1 = 0;
#pragma omp simd reduction(+ : a0, b0, a1, b1)
    for (int64_t q = 0; q < len; ++q) {
      const T cw = w[q] * (g_in[q] - g_bar);
      a0 += cw * e0[q];
      b0 += cw * e0[q] * e0[q];
      a1 += cw * e1[q];
      b1 += cw * e1[q] * e1[q];
    }
    s1[0] = a0, s2[0] = b0, s1[1] = a1, s2[1] = b1;
  } else {
    for (int d = 0; d < rank; ++d) {
      const T* e = scratch.diff[d].data();
      T sa = 0, sb = 0;
#pragma omp simd reduction(+ : sa, sb)
      for (int64_t q = 0; q < len; ++q) {
        const T cw = w[q] * (g_in[q] - g_bar);
        sa += cw * e[q];
        sb += cw * e[q] * e[q];
      }
      s1[d] = sa, s2[d] = sb;
    }
  }
}

// Backward of chunk c: the gradients of its tuples (each tuple's own
// entries: no races).
template <typename scalar_t, typename T, int kRank, typename Grid>
void backward_chunk(const Args<scalar_t>& a, int64_t c, const Grid& grid,
                    Scratch<T>& scratch) {
  const int rank = static_cast<int>(a.sh.rank);
  // The incoming gradient of each distinct point, in grid order.
  const scalar_t* g_chunk = a.g + c * a.sh.chunk * a.sh.s;
  std::vector<T>& g = scratch.g;
  g.assign(grid.num_distinct() + Grid::kPadding, T(0));
  const int64_t* items = grid.items();
  for (int64_t q = 0; q < grid.num_distinct(); ++q) {
    g[q] = static_cast<T>(g_chunk[items[q]]);
  }
  for (int64_t i = 0; i < a.sh.chunk; ++i) {
    const int64_t t = c * a.sh.chunk + i;
    const Tuple<T> tp(a.mu + t * rank, a.sigma + t * rank, rank, a.r_sq);
    const Reach<T> reach =
        weigh_tuple<T, kRank, /*kBackward=*/true>(grid, tp, scratch, g.data());
    const T total = reach.total;
    if (total == 0) continue;  // no point in reach: zero gradients
    const int64_t len = reach.len;
    const T* w = scratch.w.data();
    const T* g_in = scratch.g_in.data();
    // dL/dv_i = sum_j p'_ij g_j
    T g_sum = 0;
#pragma omp simd reduction(+ : g_sum)
    for (int64_t q = 0; q < len; ++q) g_sum += w[q] * g_in[q];
    const T g_bar = g_sum / total;
    a.gv[t] = static_cast<scalar_t>(g_bar);
    T s1[kMaxTupleRank] = {}, s2[kMaxTupleRank] = {};
    offset_moments<T, kRank>(scratch, len, rank, g_bar, s1, s2);
    const double v_over_total = static_cast<double>(a.v[t]) / total;
    for (int d = 0; d < rank; ++d) {
      // s1 or s2 = 0 (a tuple alone in reach) gives 0, even where
      // 1 / sigma^2 overflows.
      const double inv = 1.0 / tp.sigma[d];
      a.gmu[t * rank + d] = static_cast<scalar_t>(
          s1[d] == 0 ? 0.0 : v_over_total * static_cast<double>(s1[d]) * inv);
      a.gsigma[t * rank + d] = static_cast<scalar_t>(
          s2[d] == 0 ? 0.0
                     : v_over_total * 0.5 * static_cast<double>(s2[d]) * inv * inv);
    }
  }
}

// One compiled function per (input type, compute type, direction), each
// choosing the rank-specialised loops, each in an AVX2 and a baseline
// version (kernels/common/vector_clones.h).
#define INDEXGRAD_CHUNK_FN(name, impl, scalar_t, T, Grid)                 \
  INDEXGRAD_VECTOR_CLONES void name(const Args<scalar_t>& a, int64_t c,   \
                                    const Grid& grid,                     \
                                    Scratch<T>& scratch) {                \
    switch (a.sh.rank) {                                                  \
      case 1: return impl<scalar_t, T, 1>(a, c, grid, scratch);           \
      case 2: return impl<scalar_t, T, 2>(a, c, grid, scratch);           \
      default: return impl<scalar_t, T, 0>(a, c, grid, scratch);          \
    }                                                                     \
  }
#define INDEXGRAD_CHUNK_FNS(Grid)                                         \
  INDEXGRAD_CHUNK_FN(forward_ff, forward_chunk, float, float, Grid)       \
  INDEXGRAD_CHUNK_FN(forward_fd, forward_chunk, float, double, Grid)      \
  INDEXGRAD_CHUNK_FN(forward_dd, forward_chunk, double, double, Grid)     \
  INDEXGRAD_CHUNK_FN(backward_ff, backward_chunk, float, float, Grid)     \
  INDEXGRAD_CHUNK_FN(backward_fd, backward_chunk, float, double, Grid)    \
  INDEXGRAD_CHUNK_FN(backward_dd, backward_chunk, double, double, Grid)
INDEXGRAD_CHUNK_FNS(ChunkGrid)
INDEXGRAD_CHUNK_FNS(TinyChunk)
#undef INDEXGRAD_CHUNK_FNS
#undef INDEXGRAD_CHUNK_FN

// Chunk c with its points indexed by `grid` (built here), float inputs
// computed in float where the chunk's coordinates are exact in float,
// everything else in double.
template <typename scalar_t, typename Grid>
void run_chunk(const Args<scalar_t>& a, int64_t c, const int64_t* points,
               bool forward, Grid& grid, Scratch<float>& scratch_f,
               Scratch<double>& scratch_d) {
  const Shape& sh = a.sh;
  constexpr bool kFloat = std::is_same_v<scalar_t, float>;
  grid.Build(points + c * sh.chunk * sh.s * sh.rank, sh.chunk * sh.s,
             static_cast<int>(sh.rank), kFloat);
  if constexpr (kFloat) {
    if (grid.float_coords()) {
      forward ? forward_ff(a, c, grid, scratch_f)
              : backward_ff(a, c, grid, scratch_f);
    } else {
      forward ? forward_fd(a, c, grid, scratch_d)
              : backward_fd(a, c, grid, scratch_d);
    }
  } else {
    forward ? forward_dd(a, c, grid, scratch_d)
            : backward_dd(a, c, grid, scratch_d);
  }
}

// Runs every chunk (batch row major) in parallel; chunks of at most
// TinyChunk::kMaxPoints points without a grid.
template <typename scalar_t>
void run_chunks(const Args<scalar_t>& a, const int64_t* points, bool forward) {
  const Shape& sh = a.sh;
  const bool tiny = sh.chunk * sh.s <= TinyChunk::kMaxPoints;
  at::parallel_for(0, sh.batch * (sh.k / sh.chunk), 1, [&](int64_t c0,
                                                            int64_t c1) {
    Scratch<float> scratch_f;
    Scratch<double> scratch_d;
    if (tiny) {
      TinyChunk grid;
      for (int64_t c = c0; c < c1; ++c) {
        run_chunk(a, c, points, forward, grid, scratch_f, scratch_d);
      }
    } else {
      ChunkGrid grid;
      for (int64_t c = c0; c < c1; ++c) {
        run_chunk(a, c, points, forward, grid, scratch_f, scratch_d);
      }
    }
  });
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
  const double r_sq = chunk_max_excess(sh.chunk * sh.s, tolerance);
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "spread_values_cpu", [&] {
    Args<scalar_t> a{};
    a.sh = sh;
    a.mu = means_c.data_ptr<scalar_t>();
    a.sigma = sigmas_c.data_ptr<scalar_t>();
    a.v = values_c.data_ptr<scalar_t>();
    a.r_sq = r_sq;
    a.out = out.data_ptr<scalar_t>();
    run_chunks(a, points_c.data_ptr<int64_t>(), /*forward=*/true);
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
  detail::check_spread_values_grad(op, grad, points, values);
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
  const double r_sq = chunk_max_excess(sh.chunk * sh.s, tolerance);
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "spread_values_backward_cpu",
                             [&] {
    Args<scalar_t> a{};
    a.sh = sh;
    a.mu = means_c.data_ptr<scalar_t>();
    a.sigma = sigmas_c.data_ptr<scalar_t>();
    a.v = values_c.data_ptr<scalar_t>();
    a.g = grad_c.data_ptr<scalar_t>();
    a.r_sq = r_sq;
    a.gmu = grad_means.data_ptr<scalar_t>();
    a.gsigma = grad_sigmas.data_ptr<scalar_t>();
    a.gv = grad_values.data_ptr<scalar_t>();
    run_chunks(a, points_c.data_ptr<int64_t>(), /*forward=*/false);
  });
  return {grad_means, grad_sigmas, grad_values};
}

}  // namespace

TORCH_LIBRARY_IMPL(indexgrad, CPU, m) {
  m.impl("spread_values", TORCH_FN(spread_values_cpu));
  m.impl("_spread_values_backward", TORCH_FN(spread_values_backward_cpu));
}

}  // namespace indexgrad
