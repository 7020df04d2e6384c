// Spatial index over the integer points of one chunk (CPU): marks repeated
// points (exact tuple comparison, no pairing function, no overflow) and
// buckets the distinct points in a uniform grid over their first two
// coordinates, so that the points inside a box are found without scanning
// the chunk.
#pragma once

#include <cstdint>
#include <vector>

namespace indexgrad {

class ChunkGrid {
 public:
  // points: [n, rank] int64 (not copied; must outlive the grid).
  void Build(const int64_t* points, int64_t n, int rank);

  int64_t size() const { return n_; }
  int64_t num_distinct() const { return static_cast<int64_t>(items_.size()); }
  // Smallest / largest coordinate d (d < 2) over the chunk's points.
  int64_t lower(int d) const { return origin_[d]; }
  int64_t upper(int d) const { return upper_[d]; }

  // Calls f(j) for every distinct point j whose first min(rank, 2)
  // coordinates lie in the cells overlapping [lo[d], hi[d]] (a superset of
  // the box; callers filter by distance).
  template <typename F>
  void ForEachInBox(const double* lo, const double* hi, F&& f) const {
    int64_t c_lo[2] = {0, 0}, c_hi[2] = {0, 0};
    for (int d = 0; d < grid_dims_; ++d) {
      const double a = (lo[d] - origin_[d]) / cell_[d];
      const double b = (hi[d] - origin_[d]) / cell_[d];
      if (b < 0 || a >= num_cells_[d]) return;
      c_lo[d] = a < 0 ? 0 : static_cast<int64_t>(a);
      c_hi[d] = b >= num_cells_[d] ? num_cells_[d] - 1 : static_cast<int64_t>(b);
    }
    for (int64_t c0 = c_lo[0]; c0 <= c_hi[0]; ++c0) {
      for (int64_t c1 = c_lo[1]; c1 <= c_hi[1]; ++c1) {
        const int64_t cell = c0 * num_cells_[1] + c1;
        for (int64_t q = cell_start_[cell]; q < cell_start_[cell + 1]; ++q) {
          f(items_[q]);
        }
      }
    }
  }

  // Calls f(j) for every distinct point.
  template <typename F>
  void ForEach(F&& f) const {
    for (int64_t j : items_) f(j);
  }

 private:
  void MarkRepeats();

  const int64_t* points_ = nullptr;
  int64_t n_ = 0;
  int rank_ = 0;
  int grid_dims_ = 0;
  std::vector<char> is_first_;
  int64_t origin_[2] = {0, 0};
  int64_t upper_[2] = {0, 0};
  int64_t cell_[2] = {1, 1};
  int64_t num_cells_[2] = {1, 1};
  std::vector<int64_t> cell_start_;  // [cells + 1]
  std::vector<int64_t> items_;       // distinct point ids, grouped by cell
  // Scratch, kept between Builds (one grid serves a thread's chunks).
  std::vector<std::pair<int64_t, int64_t>> keys_;
  std::vector<int64_t> order_, span_lo_, span_hi_, fill_;
};

}  // namespace indexgrad
