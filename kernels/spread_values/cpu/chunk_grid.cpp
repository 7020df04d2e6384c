#include "kernels/spread_values/cpu/chunk_grid.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace indexgrad {
namespace {

// Up to this many points, repeats are found by comparing all pairs (no sort).
constexpr int64_t kSmallChunk = 96;

}  // namespace

void ChunkGrid::MarkRepeats() {
  is_first_.assign(n_, 1);
  if (n_ == 0) return;
  // Spans per dimension; when their product fits in 62 bits the tuples get
  // exact mixed-radix keys (fast pair sort), otherwise a lexicographic sort.
  std::vector<int64_t>& lo = span_lo_;
  std::vector<int64_t>& hi = span_hi_;
  lo.assign(points_, points_ + rank_);
  hi.assign(points_, points_ + rank_);
  for (int64_t j = 1; j < n_; ++j) {
    for (int d = 0; d < rank_; ++d) {
      lo[d] = std::min(lo[d], points_[j * rank_ + d]);
      hi[d] = std::max(hi[d], points_[j * rank_ + d]);
    }
  }
  double capacity = 1;
  for (int d = 0; d < rank_; ++d) capacity *= double(hi[d] - lo[d] + 1);
  if (capacity < 4e18) {
    keys_.resize(n_);
    for (int64_t j = 0; j < n_; ++j) {
      int64_t key = 0;
      for (int d = 0; d < rank_; ++d) {
        key = key * (hi[d] - lo[d] + 1) + (points_[j * rank_ + d] - lo[d]);
      }
      keys_[j] = {key, j};
    }
    if (n_ <= kSmallChunk) {
      // Few points (a tuple's own, chunk size 1): compare every pair.
      for (int64_t j = 1; j < n_; ++j) {
        for (int64_t i = 0; i < j; ++i) {
          if (keys_[i].first == keys_[j].first) {
            is_first_[j] = 0;
            break;
          }
        }
      }
      return;
    }
    std::sort(keys_.begin(), keys_.end());  // ties by id: first occurrence first
    for (int64_t q = 1; q < n_; ++q) {
      if (keys_[q].first == keys_[q - 1].first) is_first_[keys_[q].second] = 0;
    }
    return;
  }
  order_.resize(n_);
  std::iota(order_.begin(), order_.end(), 0);
  auto less = [&](int64_t a, int64_t b) {
    return std::lexicographical_compare(points_ + a * rank_,
                                        points_ + (a + 1) * rank_,
                                        points_ + b * rank_,
                                        points_ + (b + 1) * rank_);
  };
  std::stable_sort(order_.begin(), order_.end(), less);
  for (int64_t q = 1; q < n_; ++q) {
    if (std::equal(points_ + order_[q] * rank_, points_ + (order_[q] + 1) * rank_,
                   points_ + order_[q - 1] * rank_)) {
      is_first_[order_[q]] = 0;
    }
  }
}

void ChunkGrid::Build(const int64_t* points, int64_t n, int rank) {
  points_ = points;
  n_ = n;
  rank_ = rank;
  grid_dims_ = rank >= 2 ? 2 : 1;
  MarkRepeats();

  int64_t distinct = 0;
  for (int64_t j = 0; j < n_; ++j) distinct += is_first_[j];
  int64_t hi[2] = {0, 0};
  bool first = true;
  for (int64_t j = 0; j < n_; ++j) {
    if (!is_first_[j]) continue;
    for (int d = 0; d < grid_dims_; ++d) {
      const int64_t v = points_[j * rank_ + d];
      if (first || v < origin_[d]) origin_[d] = v;
      if (first || v > hi[d]) hi[d] = v;
    }
    first = false;
  }
  // About two distinct points per cell; small chunks get a single cell.
  const double cells_per_dim =
      distinct <= kSmallChunk ? 1.0
      : grid_dims_ == 2       ? std::ceil(std::sqrt(distinct / 2.0))
                              : std::ceil(distinct / 2.0);
  for (int d = 0; d < 2; ++d) {
    if (d >= grid_dims_ || distinct == 0) {
      origin_[d] = 0;
      cell_[d] = 1;
      num_cells_[d] = distinct == 0 ? 0 : 1;
      continue;
    }
    const int64_t span = hi[d] - origin_[d] + 1;
    const int64_t want =
        std::max<int64_t>(1, std::min<int64_t>(span, int64_t(cells_per_dim)));
    cell_[d] = (span + want - 1) / want;
    num_cells_[d] = (span + cell_[d] - 1) / cell_[d];
  }
  const int64_t cells = num_cells_[0] * num_cells_[1];
  cell_start_.assign(cells + 1, 0);
  cell_of_.resize(n_);
  for (int64_t j = 0; j < n_; ++j) {
    if (!is_first_[j]) continue;
    const int64_t c0 = (points_[j * rank_] - origin_[0]) / cell_[0];
    const int64_t c1 =
        grid_dims_ == 2 ? (points_[j * rank_ + 1] - origin_[1]) / cell_[1] : 0;
    cell_of_[j] = c0 * num_cells_[1] + c1;
    ++cell_start_[cell_of_[j] + 1];
  }
  for (int64_t c = 0; c < cells; ++c) cell_start_[c + 1] += cell_start_[c];
  items_.resize(distinct);
  position_.resize(n_);
  fill_.assign(cell_start_.begin(), cell_start_.end() - 1);
  for (int64_t j = 0; j < n_; ++j) {
    if (is_first_[j]) {
      const int64_t q = fill_[cell_of_[j]]++;
      items_[q] = j;
      position_[j] = q;
    } else {
      position_[j] = -1;
    }
  }
  coords_.resize(rank_ * distinct);
  for (int d = 0; d < rank_; ++d) {
    double* c = coords_.data() + d * distinct;
    for (int64_t q = 0; q < distinct; ++q) {
      c[q] = static_cast<double>(points_[items_[q] * rank_ + d]);
    }
  }
}

}  // namespace indexgrad
