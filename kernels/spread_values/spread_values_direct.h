// Per-thread bodies of spread_values' CUDA kernels: sums over the points a
// tuple reaches, in double, with spread_values_math.h's per-pair terms and
// the CPU kernel's cut-off rule (a pair counts when its excess m - m0 is at
// most R^2). Here the direct path (ChunkReach: every point of the chunk; a
// chunk of n points and c tuples costs c x n weights per pass and n^2 / 2
// comparisons to find repeats, right for chunks of a few hundred points:
// chunk_size = 1 layouts, glimpses); spread_values_grid.h adds GridReach for
// paper-normalised rows of thousands of tuples. CPU tests run these bodies
// for every thread index and compare with the CPU op (spread_values_test).
//
// Flat indices: tuple t in [0, batch * k) (row major), point p in
// [0, batch * k * s); chunk c holds tuples [c chunk, (c + 1) chunk) and
// their points, which are contiguous.
#pragma once

#include <cstdint>

#include "kernels/common/host_device.h"
#include "kernels/common/tuple_rank.h"
#include "kernels/spread_values/spread_values_math.h"

namespace indexgrad {

struct SpreadLayout {
  int rank;
  int64_t s;          // points per tuple
  int64_t chunk;      // tuples per chunk
  double max_excess;  // R^2, or infinity when dense (tolerance 0)
};

// 1 when point p equals an earlier point of its chunk (its copies get
// proportion 0; the first occurrence counts). Thread per point.
INDEXGRAD_HD uint8_t point_repeats(const SpreadLayout& layout,
                                   const int64_t* points, int64_t p) {
  const int64_t per_chunk = layout.chunk * layout.s;
  const int64_t first = p / per_chunk * per_chunk;
  const int rank = layout.rank;
  const int64_t* pp = points + p * rank;
  for (int64_t q = first; q < p; ++q) {
    const int64_t* pq = points + q * rank;
    bool equal = true;
    for (int d = 0; d < rank; ++d) equal = equal && pq[d] == pp[d];
    if (equal) return 1;
  }
  return 0;
}

// Tuple t's per-dimension terms.
struct DirectTuple {
  DimTerm<double> dim[kMaxTupleRank];
  double mu[kMaxTupleRank], sigma[kMaxTupleRank];
};

template <typename scalar_t>
INDEXGRAD_HD DirectTuple direct_tuple(const SpreadLayout& layout,
                                      const scalar_t* means,
                                      const scalar_t* sigmas, int64_t t) {
  DirectTuple tp;
  for (int d = 0; d < layout.rank; ++d) {
    tp.mu[d] = static_cast<double>(means[t * layout.rank + d]);
    tp.sigma[d] = static_cast<double>(sigmas[t * layout.rank + d]);
    tp.dim[d] = DimTerm<double>::Make(tp.mu[d], tp.sigma[d]);
  }
  return tp;
}

// exp(-(m - m0) / 2) of point p for the tuple; 0 beyond the cut-off.
INDEXGRAD_HD double direct_weight(const SpreadLayout& layout,
                                  const DirectTuple& tp, const int64_t* points,
                                  int64_t p) {
  double e = 0;
  for (int d = 0; d < layout.rank; ++d) {
    e += tp.dim[d].Excess(static_cast<double>(points[p * layout.rank + d]));
  }
  return e <= layout.max_excess ? exp_nonpositive(-0.5 * e) : 0.0;
}

// The points of tuple t's chunk, in order: visit(f) calls f(p) for each.
struct ChunkPoints {
  const SpreadLayout& layout;
  int64_t t;
  template <typename F>
  INDEXGRAD_HD void operator()(F&& f) const {
    const int64_t first = t / layout.chunk * layout.chunk * layout.s;
    for (int64_t p = first; p < first + layout.chunk * layout.s; ++p) f(p);
  }
};

// Which points a tuple visits: a Reach holds the layout and, for tuple t,
// points_of(tp, t) gives a visitor (visit(f) calls f(p) for each point p);
// is_repeat(points, p) finds the repeated points its way.
// ChunkReach visits the whole chunk; spread_values_grid.h's GridReach only
// the cells the cut-off can reach. The tuple bodies below take either.
struct ChunkReach {
  SpreadLayout layout;
  INDEXGRAD_HD ChunkPoints points_of(const DirectTuple&, int64_t t) const {
    return ChunkPoints{layout, t};
  }
  // Thread per point: 1 when point p repeats an earlier one of its chunk.
  INDEXGRAD_HD uint8_t is_repeat(const int64_t* points, int64_t p) const {
    return point_repeats(layout, points, p);
  }
};

// Tuple t's normaliser: its weights over the distinct points it reaches (0
// when none is within the cut-off). Thread per tuple.
template <typename Reach, typename scalar_t>
INDEXGRAD_HD double tuple_total(const Reach& reach, const int64_t* points,
                                const uint8_t* repeats, const scalar_t* means,
                                const scalar_t* sigmas, int64_t t) {
  const DirectTuple tp = direct_tuple(reach.layout, means, sigmas, t);
  double total = 0;
  reach.points_of(tp, t)([&](int64_t p) {
    if (!repeats[p]) total += direct_weight(reach.layout, tp, points, p);
  });
  return total;
}

// The forward output of point p: sum over its chunk's tuples i of
// v_i w_ip / total_i; 0 for a repeat. Thread per point.
template <typename scalar_t>
INDEXGRAD_HD double point_value(const SpreadLayout& layout,
                                const int64_t* points, const uint8_t* repeats,
                                const scalar_t* means, const scalar_t* sigmas,
                                const scalar_t* values, const double* totals,
                                int64_t p) {
  if (repeats[p]) return 0;
  const int64_t first_tuple = p / layout.s / layout.chunk * layout.chunk;
  double out = 0;
  for (int64_t i = first_tuple; i < first_tuple + layout.chunk; ++i) {
    if (totals[i] == 0) continue;  // nothing in reach
    const DirectTuple tp = direct_tuple(layout, means, sigmas, i);
    out += static_cast<double>(values[i]) / totals[i] *
           direct_weight(layout, tp, points, p);
  }
  return out;
}

struct TupleGradient {
  double mu[kMaxTupleRank], sigma[kMaxTupleRank], value;
};

// Tuple t's gradients from the incoming gradient `grad` of the distinct
// points it reaches (the CPU kernel's formulas, spread_values_kernel.cpp:
// with c_j = w_j (g_j - g_bar), dL/dmu_d = v / total sum_j c_j (t_jd -
// mu_d) / sigma_d, dL/dsigma_d = v / total sum_j c_j (t_jd - mu_d)^2 / (2
// sigma_d^2), dL/dv = g_bar). Thread per tuple.
template <typename Reach, typename scalar_t>
INDEXGRAD_HD TupleGradient tuple_gradient(const Reach& reach, const int64_t* points,
                                          const uint8_t* repeats, const scalar_t* means,
                                          const scalar_t* sigmas, const scalar_t* values,
                                          const scalar_t* grad, int64_t t) {
  const SpreadLayout& layout = reach.layout;
  const DirectTuple tp = direct_tuple(layout, means, sigmas, t);
  const auto visit = reach.points_of(tp, t);
  TupleGradient out;
  out.value = 0;
  for (int d = 0; d < layout.rank; ++d) out.mu[d] = out.sigma[d] = 0;
  double total = 0, g_sum = 0;
  visit([&](int64_t p) {
    if (repeats[p]) return;
    const double w = direct_weight(layout, tp, points, p);
    total += w;
    g_sum += w * static_cast<double>(grad[p]);
  });
  if (total == 0) return out;  // nothing in reach: zero gradients
  const double g_bar = g_sum / total;
  out.value = g_bar;
  double s1[kMaxTupleRank], s2[kMaxTupleRank];
  for (int d = 0; d < layout.rank; ++d) s1[d] = s2[d] = 0;
  visit([&](int64_t p) {
    if (repeats[p]) return;
    const double w = direct_weight(layout, tp, points, p);
    if (w == 0) return;
    const double cw = w * (static_cast<double>(grad[p]) - g_bar);
    for (int d = 0; d < layout.rank; ++d) {
      const double e = static_cast<double>(points[p * layout.rank + d]) - tp.mu[d];
      s1[d] += cw * e;
      s2[d] += cw * e * e;
    }
  });
  const double v_over_total = static_cast<double>(values[t]) / total;
  for (int d = 0; d < layout.rank; ++d) {
    // As on the CPU: a zero sum gives 0 even where 1 / sigma^2 overflows.
    const double inv = 1.0 / tp.sigma[d];
    out.mu[d] = s1[d] == 0 ? 0.0 : v_over_total * s1[d] * inv;
    out.sigma[d] = s2[d] == 0 ? 0.0 : v_over_total * 0.5 * s2[d] * inv * inv;
  }
  return out;
}

}  // namespace indexgrad
