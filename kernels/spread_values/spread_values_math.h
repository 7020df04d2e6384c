// Per-pair math of spread_values, shared by the CPU kernel and a future CUDA
// kernel (no torch headers). All in double.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"
#include "kernels/common/tuple_rank.h"

namespace indexgrad {

// One dimension of a tuple: mean mu, variance sigma, in the compute type T
// (float or double). The squared Mahalanobis distance of integer coordinate
// t, relative to that of the nearest integer t0 (the floor or ceil
// neighbour), is
//   ((t - mu)^2 - (t0 - mu)^2) / sigma = (t - t0) (t + t0 - 2 mu) / sigma,
// written as a product so that it is exactly 0 at t = t0 however small sigma
// is (no difference of two huge terms), and >= 0 elsewhere.
template <typename T>
struct DimTerm {
  T t0;          // nearest integer to mu (ties: floor)
  T shift;       // t0 - 2 mu
  T inv_sigma;   // 1 / sigma, capped at T's largest finite value

  INDEXGRAD_HD static DimTerm Make(double mu, double sigma) {
    constexpr double kMax = sizeof(T) == 4 ? 3.4028234663852886e38
                                           : 1.7976931348623157e308;
    const double lo = floor(mu), hi = ceil(mu);
    const double t0 = (mu - lo <= hi - mu) ? lo : hi;
    const double inv = 1.0 / sigma;
    DimTerm d;
    d.t0 = static_cast<T>(t0);
    d.shift = static_cast<T>(t0 - 2.0 * mu);
    d.inv_sigma = static_cast<T>(inv < kMax ? inv : kMax);
    return d;
  }

  // Excess of coordinate t over the nearest one; 0 at t0; (t-t0) and
  // (t+shift) are multiplied first, so 0 * inv_sigma stays 0 when inv_sigma
  // is the cap.
  INDEXGRAD_HD T Excess(T t) const { return ((t - t0) * (t + shift)) * inv_sigma; }
};

// exp(x) for x <= 0, to about one ulp (relative error below 1e-15), in plain
// arithmetic the compiler vectorises (libm's exp is a call per element).
// x = k ln2 + r with |r| <= ln2 / 2; exp(r) by its Taylor series to r^13
// (remainder < 0.35^14 / 14! < 1e-17); 2^k from the exponent bits. Below
// -708 (where exp leaves the normal range) it returns exactly 0, as libm's
// exp underflows: a point that far weighs nothing, so it adds nothing to a
// gradient either (even where 1 / sigma overflows).
INDEXGRAD_HD double exp_nonpositive(double x) {
  const bool underflow = x < -708.0;
  x = underflow ? -708.0 : x;  // keeps the exponent bits in range
  constexpr double kLog2e = 1.4426950408889634;
  constexpr double kLn2Hi = 6.93147180369123816490e-01;
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  constexpr double kRound = 6755399441055744.0;  // 1.5 * 2^52
  const double kr = x * kLog2e + kRound;           // k in the low bits
  const double k = kr - kRound;                    // round(x / ln2)
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  // 2^k: k in [-1022, 0] sits in the low bits of kr; move it to the exponent.
#if defined(__CUDA_ARCH__)
  const uint64_t bits = static_cast<uint64_t>(__double_as_longlong(kr));
  const double scale =
      __longlong_as_double(static_cast<long long>((bits + 1023) << 52));
#else  // a bit cast GCC vectorises (memcpy into a local blocks it)
  const uint64_t bits = __builtin_bit_cast(uint64_t, kr);
  const double scale = __builtin_bit_cast(double, (bits + 1023) << 52);
#endif
  return underflow ? 0.0 : p * scale;
}

// The float version: exp(x) for x <= 0 to a few float ulps (relative error
// below 3e-7): Taylor series to r^7 (remainder < 0.35^8 / 8! < 6e-9); below
// -87, exactly 0.
INDEXGRAD_HD float exp_nonpositive(float x) {
  const bool underflow = x < -87.0f;
  x = underflow ? -87.0f : x;
  constexpr float kLog2e = 1.44269504f;
  constexpr float kLn2Hi = 0.693145752f;  // ln 2 in 16 bits
  constexpr float kLn2Lo = 1.42860677e-06f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23
  const float kr = x * kLog2e + kRound;
  const float k = kr - kRound;
  const float r = (x - k * kLn2Hi) - k * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
#if defined(__CUDA_ARCH__)
  const uint32_t bits = static_cast<uint32_t>(__float_as_int(kr));
  const float scale = __int_as_float(static_cast<int>((bits + 127u) << 23));
#else
  const uint32_t bits = __builtin_bit_cast(uint32_t, kr);
  const float scale = __builtin_bit_cast(float, (bits + 127u) << 23);
#endif
  return underflow ? 0.0f : p * scale;
}

// The cut-off R^2 for n points in a chunk and a tolerance (> 0): every point
// beyond m0 + R^2 weighs below tolerance / n of the nearest one, so the
// points dropped hold less than `tolerance` of each tuple's normaliser.
INDEXGRAD_HD double cutoff_sq(int64_t n, double tolerance) {
  return 2.0 * log(static_cast<double>(n > 1 ? n : 1) / tolerance);
}

// The largest excess m - m0 a chunk of n points keeps: cutoff_sq, or
// infinity when dense (tolerance 0). Every kernel's cut-off rule.
INDEXGRAD_HD double chunk_max_excess(int64_t n, double tolerance) {
  return tolerance == 0 ? HUGE_VAL : cutoff_sq(n, tolerance);
}

}  // namespace indexgrad
