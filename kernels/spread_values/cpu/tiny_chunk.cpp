#include "kernels/spread_values/cpu/tiny_chunk.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "kernels/common/vector_clones.h"

namespace indexgrad {

namespace {

// Eight 32-bit lanes (GCC vector extension: AVX2 in the x86-64-v3 clone,
// two SSE registers in the baseline one).
typedef int32_t Lanes __attribute__((vector_size(32)));

// repeat[j] = 1 if point j (x[j], y[j]) equals an earlier one, for
// j < 8 kVectors: for each point i, every later point at once, the flags in
// registers (entries n.. of x and y must be readable; their flags are
// meaningless).
template <int kVectors>
inline void MarkRepeats(const int32_t* x, const int32_t* y, int32_t n,
                        int32_t* repeat) {
  Lanes xs[kVectors], ys[kVectors], js[kVectors], r[kVectors];
  for (int v = 0; v < kVectors; ++v) {
    std::memcpy(&xs[v], x + 8 * v, sizeof(Lanes));
    std::memcpy(&ys[v], y + 8 * v, sizeof(Lanes));
    for (int l = 0; l < 8; ++l) js[v][l] = 8 * v + l;
    r[v] = Lanes{};
  }
  for (int32_t i = 0; i < n; ++i) {
    const Lanes xi = Lanes{} + x[i], yi = Lanes{} + y[i], ii = Lanes{} + i;
    for (int v = 0; v < kVectors; ++v) {
      r[v] |= (js[v] > ii) & (xs[v] == xi) & (ys[v] == yi);  // -1 or 0
    }
  }
  for (int v = 0; v < kVectors; ++v) {
    const Lanes flag = -r[v];
    std::memcpy(repeat + 8 * v, &flag, sizeof(Lanes));
  }
}

}  // namespace

// Rank <= 2 with 32-bit coordinates (every use in this library): repeats
// found in vector loops over 32-bit copies of the coordinates, the distinct
// points compacted without branches (which points repeat is data: a branch
// would be mispredicted about once per point).
template <typename T>
void TinyChunk::BuildNarrow(const int64_t* points, int rank) {
  const int64_t n = n_;
  for (int64_t i = 0; i < n; ++i) {
    x_[i] = static_cast<int32_t>(points[i * rank]);
    y_[i] = rank == 2 ? static_cast<int32_t>(points[i * rank + 1]) : 0;
  }
  // MarkRepeats reads whole vectors of 8: 16, 64 or all kMaxPoints entries.
  static_assert(kMaxPoints % 8 == 0 && kMaxPoints >= 64, "vectors of 8 lanes");
  const int64_t read = n <= 16 ? 16 : n <= 64 ? 64 : kMaxPoints;
  for (int64_t i = n; i < read; ++i) x_[i] = y_[i] = 0;
  const int32_t n32 = static_cast<int32_t>(n);
  if (n <= 16) {
    MarkRepeats<2>(x_, y_, n32, repeat_);
  } else if (n <= 64) {
    MarkRepeats<8>(x_, y_, n32, repeat_);
  } else {
    MarkRepeats<kMaxPoints / 8>(x_, y_, n32, repeat_);
  }
  T* c0 = coords<T>(0);
  T* c1 = coords<T>(rank - 1);
  int64_t m = 0;
  for (int64_t j = 0; j < n; ++j) {
    const int32_t repeat = repeat_[j];
    position_[j] = repeat ? -1 : m;
    items_[m] = j;  // entry m is overwritten by the next point if a repeat
    c0[m] = static_cast<T>(x_[j]);
    c1[m] = static_cast<T>(rank == 2 ? y_[j] : x_[j]);
    m += 1 - repeat;
  }
  m_ = m;
  for (int d = 0; d < rank; ++d) {
    std::fill(coords<T>(d) + m, coords<T>(d) + m + kPadding, T(0));
  }
}

// Any rank or range: pair by pair, coordinate by coordinate.
template <typename T>
void TinyChunk::BuildWide(const int64_t* points, int rank) {
  const int64_t n = n_;
  int64_t m = 0;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t* pj = points + j * rank;
    int32_t repeat = 0;
    for (int64_t i = 0; i < j && !repeat; ++i) {
      const int64_t* pi = points + i * rank;
      int32_t equal = 1;
      for (int d = 0; d < rank; ++d) equal &= pi[d] == pj[d];
      repeat = equal;
    }
    position_[j] = repeat ? -1 : m;
    items_[m] = j;
    m += 1 - repeat;
  }
  m_ = m;
  for (int d = 0; d < rank; ++d) {
    T* out = coords<T>(d);
    for (int64_t q = 0; q < m; ++q) {
      out[q] = static_cast<T>(points[items_[q] * rank + d]);
    }
    std::fill(out + m, out + m + kPadding, T(0));
  }
}

INDEXGRAD_VECTOR_CLONES
void TinyChunk::Build(const int64_t* points, int64_t n, int rank,
                      bool prefer_float) {
  n_ = n;
  int64_t lo = 0, hi = 0;
  for (int64_t e = 0; e < n * rank; ++e) {
    lo = points[e] < lo ? points[e] : lo;
    hi = points[e] > hi ? points[e] : hi;
  }
  float_coords_ = prefer_float && lo >= -kFloatExact && hi <= kFloatExact;
  if (rank <= 2 && lo >= INT32_MIN && hi <= INT32_MAX) {
    float_coords_ ? BuildNarrow<float>(points, rank)
                  : BuildNarrow<double>(points, rank);
  } else {
    float_coords_ ? BuildWide<float>(points, rank)
                  : BuildWide<double>(points, rank);
  }
}

}  // namespace indexgrad
