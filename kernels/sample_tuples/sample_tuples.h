// sample_tuples: the integer index tuples sampled for each continuous tuple
// (Bloem et al. 2018, section 2.1).
//
// means   [batch, k, r] float/double, component d in [0, sizes[d] - 1]
// returns [batch, k, 2^r + num_local + num_global, r] int64: per tuple its
//         2^r floor/ceil neighbours (first dimension slowest), num_local
//         uniform samples in a box of `region` cells around round(mean)
//         (round half up; the box is shifted inside the bounds), and
//         num_global uniform samples over all tuples.
// Reproducible: the samples are a pure function of (seed, batch row, tuple,
// sample, dimension). Not differentiable (integers).
#pragma once

#include <ATen/ATen.h>

#include "kernels/sample_tuples/sample_tuples_math.h"

namespace indexgrad {

at::Tensor sample_tuples(const at::Tensor& means, at::IntArrayRef sizes,
                         int64_t num_global, int64_t num_local,
                         at::IntArrayRef region, int64_t seed);

namespace detail {
// The checks every device's kernel makes (errors name the argument and the
// value seen), and the layout its per-element rule reads. The means' NaN
// and range check reads three values back to the host: on a GPU, one
// synchronisation per call.
SampleLayout check_sample_tuples_args(const char* op, const at::Tensor& means,
                                      at::IntArrayRef sizes, int64_t num_global,
                                      int64_t num_local, at::IntArrayRef region,
                                      int64_t seed);
}  // namespace detail

}  // namespace indexgrad
