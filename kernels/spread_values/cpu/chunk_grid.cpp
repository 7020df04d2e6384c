#include "kernels/spread_values/cpu/chunk_grid.h"

#include <algorithm>
#include <cmath>

#include "kernels/common/vector_clones.h"

namespace indexgrad {
namespace {

// Up to this many points in a cell, repeats are found by comparing pairs;
// beyond, by sorting the cell's points.
constexpr int64_t kPairwiseCell = 96;

// out[d * (m + kPadding) + q] = coordinate d of point items[q], q < m =
// items.size(), and zeros in each dimension's padding.
template <typename T>
void CopyCoordinates(const int64_t* points, int rank,
                     const std::vector<int64_t>& items, std::vector<T>& out) {
  const int64_t m = static_cast<int64_t>(items.size());
  const int64_t stride = m + ChunkGrid::kPadding;
  out.resize(rank * stride);
  for (int d = 0; d < rank; ++d) {
    T* o = out.data() + d * stride;
    for (int64_t q = 0; q < m; ++q) {
      o[q] = static_cast<T>(points[items[q] * rank + d]);
    }
    std::fill(o + m, o + stride, T(0));
  }
}

}  // namespace

bool ChunkGrid::Equal(int64_t a, int64_t b) const {
  if (use_keys_) return keys_[a] == keys_[b];
  const int64_t* pa = points_ + a * rank_;
  const int64_t* pb = points_ + b * rank_;
  for (int d = 0; d < rank_; ++d) {
    if (pa[d] != pb[d]) return false;
  }
  return true;
}

void ChunkGrid::MarkRepeatsInCell(int64_t* first, int64_t* last) {
  const int64_t m = last - first;
  if (m <= kPairwiseCell && use_keys_) {
    // In point order (the counting sort is stable): the first occurrence
    // comes first. Branch-free and scalar (cells hold a few points: a
    // vector reduction's setup would cost more).
    int64_t cell_keys[kPairwiseCell];
    for (int64_t a = 0; a < m; ++a) cell_keys[a] = keys_[first[a]];
    for (int64_t a = 1; a < m; ++a) {
      const int64_t key = cell_keys[a];
      int repeats = 0;
      for (int64_t b = 0; b < a; ++b) repeats |= cell_keys[b] == key;
      if (repeats) is_first_[first[a]] = 0;
    }
    return;
  }
  if (m <= kPairwiseCell) {
    for (int64_t a = 1; a < m; ++a) {
      for (int64_t b = 0; b < a; ++b) {
        if (Equal(first[a], first[b])) {
          is_first_[first[a]] = 0;
          break;
        }
      }
    }
    return;
  }
  // Sorted by key (or coordinates), ties in point order.
  if (use_keys_) {
    std::sort(first, last, [&](int64_t a, int64_t b) {
      return keys_[a] < keys_[b] || (keys_[a] == keys_[b] && a < b);
    });
  } else {
    std::stable_sort(first, last, [&](int64_t a, int64_t b) {
      return std::lexicographical_compare(points_ + a * rank_,
                                          points_ + (a + 1) * rank_,
                                          points_ + b * rank_,
                                          points_ + (b + 1) * rank_);
    });
  }
  for (int64_t q = 1; q < m; ++q) {
    if (Equal(first[q], first[q - 1])) is_first_[first[q]] = 0;
  }
}

void ChunkGrid::SetOneCell(int d) {
  origin_[d] = 0;
  shift_[d] = 62;  // every coordinate in cell 0 (offsets are below 2^62)
  cell_[d] = int64_t(1) << 62;
  num_cells_[d] = n_ == 0 ? 0 : 1;
}

void ChunkGrid::BuildCells() {
  // Cells over the first two dimensions, about two points each.
  const double cells_per_dim = grid_dims_ == 2 ? std::ceil(std::sqrt(n_ / 2.0))
                                               : std::ceil(n_ / 2.0);
  for (int d = 0; d < 2; ++d) {
    if (d >= grid_dims_ || n_ == 0) {
      SetOneCell(d);
      continue;
    }
    origin_[d] = span_lo_[d];
    const int64_t span = span_hi_[d] - span_lo_[d] + 1;
    const int64_t want =
        std::max<int64_t>(1, std::min<int64_t>(span, int64_t(cells_per_dim)));
    // Cell sides are powers of two: a point's cell is a shift, not a division.
    shift_[d] = 0;
    while (shift_[d] < 62 &&
           (static_cast<uint64_t>(want) << shift_[d]) < static_cast<uint64_t>(span)) {
      ++shift_[d];
    }
    cell_[d] = int64_t(1) << shift_[d];
    num_cells_[d] = ((span - 1) >> shift_[d]) + 1;
  }
  // Counting sort of all points by cell (stable: point order within a
  // cell), then repeats marked cell by cell (equal points share a cell).
  const int64_t cells = num_cells_[0] * num_cells_[1];
  cell_start_.assign(cells + 1, 0);
  cell_of_.resize(n_);
  for (int64_t j = 0; j < n_; ++j) {
    const int64_t c0 = (points_[j * rank_] - origin_[0]) >> shift_[0];
    const int64_t c1 =
        grid_dims_ == 2 ? (points_[j * rank_ + 1] - origin_[1]) >> shift_[1] : 0;
    cell_of_[j] = c0 * num_cells_[1] + c1;
    ++cell_start_[cell_of_[j] + 1];
  }
  for (int64_t c = 0; c < cells; ++c) cell_start_[c + 1] += cell_start_[c];
  order_.resize(n_);
  fill_.assign(cell_start_.begin(), cell_start_.end() - 1);
  for (int64_t j = 0; j < n_; ++j) order_[fill_[cell_of_[j]]++] = j;
  is_first_.assign(n_, 1);
  for (int64_t c = 0; c < cells; ++c) {
    if (cell_start_[c + 1] - cell_start_[c] > 1) {
      MarkRepeatsInCell(order_.data() + cell_start_[c],
                        order_.data() + cell_start_[c + 1]);
    }
  }
  // Distinct points only, still grouped by cell.
  items_.clear();
  position_.assign(n_, -1);
  int64_t begin = 0;
  for (int64_t c = 0; c < cells; ++c) {
    const int64_t end = cell_start_[c + 1];
    cell_start_[c] = static_cast<int64_t>(items_.size());
    for (int64_t q = begin; q < end; ++q) {
      const int64_t j = order_[q];
      if (!is_first_[j]) continue;
      position_[j] = static_cast<int64_t>(items_.size());
      items_.push_back(j);
    }
    begin = end;
  }
  cell_start_[cells] = static_cast<int64_t>(items_.size());
}

INDEXGRAD_VECTOR_CLONES
void ChunkGrid::Build(const int64_t* points, int64_t n, int rank,
                      bool prefer_float) {
  points_ = points;
  n_ = n;
  rank_ = rank;
  grid_dims_ = rank >= 2 ? 2 : 1;
  // Spans of every dimension over all points.
  span_lo_.assign(rank_, 0);
  span_hi_.assign(rank_, 0);
  for (int d = 0; d < rank_ && n_ > 0; ++d) {
    int64_t lo = points_[d], hi = points_[d];  // in registers: branch-free
    for (int64_t j = 1; j < n_; ++j) {
      const int64_t v = points_[j * rank_ + d];
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    span_lo_[d] = lo;
    span_hi_[d] = hi;
  }
  // Exact mixed-radix keys of the points when the spans' product fits in
  // 62 bits (one comparison per pair of points), else coordinates compared.
  double capacity = 1;
  for (int d = 0; d < rank_; ++d) {
    capacity *= static_cast<double>(span_hi_[d] - span_lo_[d] + 1);
  }
  use_keys_ = capacity < 4e18;
  if (use_keys_) {
    keys_.resize(n_);
    for (int64_t j = 0; j < n_; ++j) {
      int64_t key = 0;
      for (int d = 0; d < rank_; ++d) {
        key = key * (span_hi_[d] - span_lo_[d] + 1) +
              (points_[j * rank_ + d] - span_lo_[d]);
      }
      keys_[j] = key;
    }
  }
  BuildCells();
  for (int d = 0; d < 2; ++d) {
    origin_d_[d] = static_cast<double>(origin_[d]);
    inv_cell_[d] = 1.0 / static_cast<double>(cell_[d]);
    num_cells_d_[d] = static_cast<double>(num_cells_[d]);
  }
  // Coordinates in grid order, each dimension padded with kPadding zeros.
  float_coords_ = prefer_float;
  constexpr int64_t kFloatExact = int64_t(1) << 24;
  for (int d = 0; d < rank_ && n_ > 0; ++d) {
    if (span_lo_[d] < -kFloatExact || span_hi_[d] > kFloatExact) {
      float_coords_ = false;
    }
  }
  if (float_coords_) {
    CopyCoordinates(points_, rank_, items_, coords_f_);
  } else {
    CopyCoordinates(points_, rank_, items_, coords_);
  }
}

}  // namespace indexgrad
