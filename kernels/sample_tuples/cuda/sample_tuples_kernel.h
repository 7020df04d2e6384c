// Plain C++ interface of the CUDA kernel of sample_tuples (no torch headers,
// so the .cu compiles in about a second). `means` [tuples, rank] and `out`
// [tuples, samples, rank] are contiguous device buffers. Launches on
// `stream` (a cudaStream_t passed as void*).
#pragma once

#include <cstdint>

#include "kernels/sample_tuples/sample_tuples_math.h"

namespace indexgrad {
namespace cuda {

template <typename scalar_t>
void sample_tuples_forward(const SampleLayout& layout, int64_t tuples,
                           const scalar_t* means, int64_t* out, void* stream);


}  // namespace cuda
}  // namespace indexgrad
