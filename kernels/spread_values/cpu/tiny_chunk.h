// The distinct points of a chunk of at most kMaxPoints points (chunk size 1
// layouts: the identity layer's 12 points per tuple, a glimpse pixel's 52),
// with ChunkGrid's interface but no grid: every tuple of the chunk visits
// all of its points (kOneRange; the kernel still applies the cut-off), and
// building it is a pass over the point pairs into fixed arrays: for small
// chunks far cheaper than ChunkGrid's one-cell path (docs/benchmarks.md).
#pragma once

#include <cstdint>

#include "kernels/common/tuple_rank.h"

namespace indexgrad {

class TinyChunk {
 public:
  static constexpr int64_t kMaxPoints = 96;
  static constexpr int64_t kPadding = 16;  // zeros after the last point
  // Tuples visit every point of the chunk as one range (no ForEachRange).
  static constexpr bool kOneRange = true;

  // points: [n, rank] int64, n <= kMaxPoints (not copied). Repeats are
  // points equal to an earlier one in every coordinate. Coordinates are kept
  // as floats with prefer_float when all are exact in float (|t| <= 2^24).
  void Build(const int64_t* points, int64_t n, int rank, bool prefer_float);

  int64_t size() const { return n_; }
  int64_t num_distinct() const { return m_; }
  bool float_coords() const { return float_coords_; }
  template <typename T>
  const T* coords(int d) const;
  const int64_t* items() const { return items_; }
  const int64_t* positions() const { return position_; }

 private:
  static constexpr int64_t kFloatExact = int64_t(1) << 24;

  template <typename T>
  void BuildNarrow(const int64_t* points, int rank);
  template <typename T>
  void BuildWide(const int64_t* points, int rank);
  template <typename T>
  T* coords(int d) {
    return const_cast<T*>(static_cast<const TinyChunk*>(this)->coords<T>(d));
  }

  int64_t n_ = 0, m_ = 0;
  bool float_coords_ = false;
  int32_t x_[kMaxPoints], y_[kMaxPoints];  // narrow: 32-bit coordinates
  int32_t repeat_[kMaxPoints];
  int64_t items_[kMaxPoints];
  int64_t position_[kMaxPoints];
  float coords_f_[kMaxTupleRank][kMaxPoints + kPadding];
  double coords_[kMaxTupleRank][kMaxPoints + kPadding];
};

template <>
inline const float* TinyChunk::coords<float>(int d) const {
  return coords_f_[d];
}
template <>
inline const double* TinyChunk::coords<double>(int d) const {
  return coords_[d];
}

}  // namespace indexgrad
