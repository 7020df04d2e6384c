// Per-thread bodies of spread_values' CUDA kernels for large chunks (the
// paper's whole-row normalisation): the points of all chunks sorted by a
// cell key, so that a tuple visits only the cells its cut-off ellipse can
// reach instead of its whole chunk (spread_values_direct.h). The same
// weights, cut-off rule and formulas (tuple_total and tuple_gradient take a
// GridReach instead of a ChunkReach); only the set of points visited and
// the order of the sums differ. CPU tests run
// these bodies for every thread index against the CPU op
// (spread_values_test: "GridBodies").
//
// Cells: cubes of side `cell` over the chunk coordinates' bounding box
// [lo_d, hi_d] (all chunks share it); key(p) = chunk(p) cells_per_chunk +
// the cell's row-major index. The host sorts the keys (stable, on the
// device) and passes sorted_keys and order (sorted position -> point).
#pragma once

#include <math.h>

#include <cstdint>

#include "kernels/common/host_device.h"
#include "kernels/common/tuple_rank.h"
#include "kernels/spread_values/spread_values_direct.h"

namespace indexgrad {

struct SpreadGrid {
  int64_t cell;                     // cell side (index units), >= 1
  int64_t lo[kMaxTupleRank];        // smallest coordinate per dimension
  int64_t extent[kMaxTupleRank];    // cells per dimension
  int64_t cells_per_chunk;          // product of the extents
  int64_t n;                        // points in all
};

// Thread per point: its cell key.
INDEXGRAD_HD int64_t grid_key(const SpreadLayout& L, const SpreadGrid& G,
                              const int64_t* points, int64_t p) {
  int64_t key = 0;
  for (int d = 0; d < L.rank; ++d) {
    key = key * G.extent[d] + (points[p * L.rank + d] - G.lo[d]) / G.cell;
  }
  return p / (L.chunk * L.s) * G.cells_per_chunk + key;
}

// First sorted position whose key is >= key.
INDEXGRAD_HD int64_t grid_lower_bound(const int64_t* sorted_keys, int64_t n, int64_t key) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (sorted_keys[mid] < key) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// The grid and the sorted keys: which points a tuple reaches (as
// spread_values_direct.h's ChunkReach, for tuple_total and tuple_gradient).
struct GridPoints;
struct GridReach {
  SpreadLayout layout;
  SpreadGrid grid;
  const int64_t* sorted_keys;
  const int64_t* order;  // sorted position -> point
  INDEXGRAD_HD GridPoints points_of(const DirectTuple& tp, int64_t t) const;
  INDEXGRAD_HD uint8_t is_repeat(const int64_t* points, int64_t p) const;
};

// Thread per point: 1 when point p equals an earlier point of its chunk
// (equal points share a cell, so only its cell is searched).
INDEXGRAD_HD uint8_t grid_point_repeats(const GridReach& R, const int64_t* points, int64_t p) {
  const SpreadLayout& L = R.layout;
  const int64_t key = grid_key(L, R.grid, points, p);
  for (int64_t q = grid_lower_bound(R.sorted_keys, R.grid.n, key);
       q < R.grid.n && R.sorted_keys[q] == key; ++q) {
    const int64_t o = R.order[q];
    if (o >= p) continue;
    bool equal = true;
    for (int d = 0; d < L.rank; ++d) equal = equal && points[o * L.rank + d] == points[p * L.rank + d];
    if (equal) return 1;
  }
  return 0;
}

// The points of the cells tuple t's cut-off can reach. A point has weight 0
// unless sum_d (t_d - mu_d)^2 / sigma_d <= R^2 + sum_d (t0_d - mu_d)^2 /
// sigma_d =: r^2 (the excess rule), so |t_d - mu_d| <= r sqrt(sigma_d); the
// box is widened by one index for rounding.
struct GridPoints {
  const SpreadLayout& L;
  const SpreadGrid& G;
  const int64_t* sorted_keys;
  const int64_t* order;
  int64_t chunk;
  int64_t first[kMaxTupleRank], last[kMaxTupleRank];  // cell ranges, inclusive

  INDEXGRAD_HD GridPoints(const GridReach& reach, const DirectTuple& tp, int64_t t)
      : L(reach.layout),
        G(reach.grid),
        sorted_keys(reach.sorted_keys),
        order(reach.order),
        chunk(t / reach.layout.chunk) {
    double r2 = L.max_excess;
    for (int d = 0; d < L.rank; ++d) {
      const double off = static_cast<double>(tp.dim[d].t0) - tp.mu[d];
      r2 += off * off / tp.sigma[d];
    }
    for (int d = 0; d < L.rank; ++d) {
      const double top = static_cast<double>(G.lo[d] + G.extent[d] * G.cell - 1);
      const double half = sqrt(r2 * tp.sigma[d]);
      const double bottom = static_cast<double>(G.lo[d]);
      double a = floor(tp.mu[d] - half) - 1, b = ceil(tp.mu[d] + half) + 1;
      a = a > bottom ? a : bottom;  // (NaN-safe: a NaN bound takes the whole range)
      b = b < top ? b : top;
      if (a > top || b < bottom) {  // the box misses every point
        first[d] = 1;
        last[d] = 0;
      } else {
        first[d] = (static_cast<int64_t>(a) - G.lo[d]) / G.cell;
        last[d] = (static_cast<int64_t>(b) - G.lo[d]) / G.cell;
      }
    }
  }

  template <typename F>
  INDEXGRAD_HD void operator()(F&& f) const {
    for (int d = 0; d < L.rank; ++d) {
      if (last[d] < first[d]) return;  // the box misses the chunk's points
    }
    int64_t c[kMaxTupleRank];
    for (int d = 0; d < L.rank; ++d) c[d] = first[d];
    while (true) {
      int64_t key = 0;
      for (int d = 0; d < L.rank; ++d) key = key * G.extent[d] + c[d];
      key += chunk * G.cells_per_chunk;
      for (int64_t q = grid_lower_bound(sorted_keys, G.n, key);
           q < G.n && sorted_keys[q] == key; ++q) {
        f(order[q]);
      }
      int d = L.rank - 1;  // the next cell, row-major
      while (d >= 0 && c[d] == last[d]) {
        c[d] = first[d];
        --d;
      }
      if (d < 0) return;
      ++c[d];
    }
  }
};

INDEXGRAD_HD GridPoints GridReach::points_of(const DirectTuple& tp, int64_t t) const {
  return GridPoints(*this, tp, t);
}

INDEXGRAD_HD uint8_t GridReach::is_repeat(const int64_t* points, int64_t p) const {
  return grid_point_repeats(*this, points, p);
}

// Thread per tuple: adds v_t w_tp / total_t to acc[p] for the points in its
// reach, through add(double*, double) (atomicAdd on the GPU): the forward
// output is acc, 0 at repeats. (tuple_total and tuple_gradient with a
// GridReach give the totals and the backward.)
template <typename scalar_t, typename Add>
INDEXGRAD_HD void grid_tuple_scatter(const GridReach& R, const int64_t* points,
                                     const uint8_t* repeats, const scalar_t* means,
                                     const scalar_t* sigmas, const scalar_t* values,
                                     const double* totals, int64_t t, double* acc,
                                     const Add& add) {
  if (totals[t] == 0) return;  // nothing in reach
  const DirectTuple tp = direct_tuple(R.layout, means, sigmas, t);
  const double scale = static_cast<double>(values[t]) / totals[t];
  R.points_of(tp, t)([&](int64_t p) {
    if (repeats[p]) return;
    const double w = direct_weight(R.layout, tp, points, p);
    if (w != 0) add(acc + p, scale * w);
  });
}

}  // namespace indexgrad
