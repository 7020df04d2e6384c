// Spatial index over the integer points of one chunk (CPU). The points are
// counting-sorted into the cells of a uniform grid over their first two
// coordinates (power-of-two sides, about two points per cell), row-major
// (the kernel uses it for chunks of more than TinyChunk::kMaxPoints points;
// smaller ones need no grid: tiny_chunk.h); repeated points are found within
// each cell (equal points share a cell) by exact comparison, no pairing
// function, no overflow. The distinct points' coordinates are copied out in
// grid order as floats (when asked and exact: all within 2^24) or doubles,
// structure of arrays: the points of a run of cells in one grid row are one
// contiguous range, which the kernel evaluates in vectorised loops.
#pragma once

#include <cstdint>
#include <vector>

namespace indexgrad {

class ChunkGrid {
 public:
  // Entries after the last distinct point in coords() (zeros), so that loops
  // may run up to kPadding - 1 entries past any range.
  static constexpr int64_t kPadding = 16;
  // Tuples visit the ranges ForEachRange gives for their cut-off.
  static constexpr bool kOneRange = false;

  // points: [n, rank] int64 (not copied; must outlive the grid). With
  // prefer_float, coordinates are kept as floats if every one is exact in
  // float (|t| <= 2^24), else as doubles; float_coords() says which.
  void Build(const int64_t* points, int64_t n, int rank, bool prefer_float);

  int64_t size() const { return n_; }
  int64_t num_distinct() const { return static_cast<int64_t>(items_.size()); }
  bool float_coords() const { return float_coords_; }
  // Coordinate d of the distinct points in grid order: [num_distinct] and
  // kPadding zeros, T the type float_coords() names.
  template <typename T>
  const T* coords(int d) const;
  // Point index (within the chunk) of the q-th distinct point in grid order.
  const int64_t* items() const { return items_.data(); }
  // Grid position q of each point j < size(), or -1 for a repeat (a point
  // equal to an earlier one).
  const int64_t* positions() const { return position_.data(); }

  // Calls f(q_begin, q_end) for ranges of grid positions that together hold
  // every distinct point whose coordinate 0 lies in [lo0, hi0] and whose
  // coordinate 1 lies in the band extent(a, b, &lo1, &hi1) gives for the
  // points with coordinate 0 in [a, b] (a superset: cells are whole;
  // extent returns false when no point of [a, b] can qualify). Rank 1: one
  // range, extent unused.
  template <typename Extent, typename F>
  void ForEachRange(double lo0, double hi0, Extent&& extent, F&& f) const {
    if (num_cells_[0] == 0) return;
    // Cell sides are powers of two: multiplying by inv_cell_ is exact.
    const double a = (lo0 - origin_d_[0]) * inv_cell_[0];
    const double b = (hi0 - origin_d_[0]) * inv_cell_[0];
    if (b < 0 || a >= num_cells_d_[0]) return;
    const int64_t c_lo = a < 0 ? 0 : static_cast<int64_t>(a);
    const int64_t c_hi =
        b >= num_cells_d_[0] ? num_cells_[0] - 1 : static_cast<int64_t>(b);
    if (grid_dims_ == 1) {
      f(cell_start_[c_lo], cell_start_[c_hi + 1]);
      return;
    }
    const double side = static_cast<double>(cell_[0]);
    for (int64_t c0 = c_lo; c0 <= c_hi; ++c0) {
      const double row_lo = origin_d_[0] + static_cast<double>(c0) * side;
      const double row_hi = row_lo + (side - 1);
      double lo1, hi1;
      if (!extent(row_lo > lo0 ? row_lo : lo0, row_hi < hi0 ? row_hi : hi0,
                  &lo1, &hi1)) {
        continue;
      }
      const double a1 = (lo1 - origin_d_[1]) * inv_cell_[1];
      const double b1 = (hi1 - origin_d_[1]) * inv_cell_[1];
      if (b1 < 0 || a1 >= num_cells_d_[1] || a1 > b1) continue;
      const int64_t d_lo = a1 < 0 ? 0 : static_cast<int64_t>(a1);
      const int64_t d_hi =
          b1 >= num_cells_d_[1] ? num_cells_[1] - 1 : static_cast<int64_t>(b1);
      const int64_t row = c0 * num_cells_[1];
      const int64_t q0 = cell_start_[row + d_lo];
      const int64_t q1 = cell_start_[row + d_hi + 1];
      if (q0 < q1) f(q0, q1);
    }
  }


 private:
  void BuildCells();  // a grid of about two points per cell
  void SetOneCell(int d);  // dimension d: one cell holding every point
  bool Equal(int64_t a, int64_t b) const;  // points a and b, every coordinate
  // Marks repeats among the points [first, last) of one cell (may reorder).
  void MarkRepeatsInCell(int64_t* first, int64_t* last);

  const int64_t* points_ = nullptr;
  int64_t n_ = 0;
  int rank_ = 0;
  int grid_dims_ = 0;
  std::vector<char> is_first_;
  int64_t origin_[2] = {0, 0};
  int shift_[2] = {0, 0};
  int64_t cell_[2] = {1, 1};  // 2^shift_
  int64_t num_cells_[2] = {0, 0};
  // The same as doubles, and 1 / cell side, for ForEachRange.
  double origin_d_[2] = {0, 0}, inv_cell_[2] = {1, 1}, num_cells_d_[2] = {0, 0};
  std::vector<int64_t> cell_start_;  // [cells + 1]
  std::vector<int64_t> items_;       // distinct point ids, in grid order
  std::vector<int64_t> position_;    // [n]
  bool float_coords_ = false;
  std::vector<double> coords_;       // [rank, distinct], or
  std::vector<float> coords_f_;      // when float_coords_
  // Scratch, kept between Builds (one grid serves a thread's chunks).
  bool use_keys_ = false;
  std::vector<int64_t> keys_;  // [n] when use_keys_
  std::vector<int64_t> order_, span_lo_, span_hi_, fill_, cell_of_;
};

template <>
inline const double* ChunkGrid::coords<double>(int d) const {
  return coords_.data() + d * (num_distinct() + kPadding);
}
template <>
inline const float* ChunkGrid::coords<float>(int d) const {
  return coords_f_.data() + d * (num_distinct() + kPadding);
}

}  // namespace indexgrad
