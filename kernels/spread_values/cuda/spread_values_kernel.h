// Plain C++ interface of the CUDA kernels of spread_values (no torch
// headers, so the .cu compiles in seconds). All pointers are contiguous
// device buffers: points [tuples * s, rank], means and sigmas [tuples,
// rank], values [tuples], out and grad [tuples * s]; `repeats` (uint8,
// tuples * s) and `totals` (double, tuples) are scratch. Launches on
// `stream` (a cudaStream_t passed as void*).
#pragma once

#include <cstdint>

#include "kernels/spread_values/spread_values_direct.h"
#include "kernels/spread_values/spread_values_grid.h"

namespace indexgrad {
namespace cuda {

// Small chunks: every point of the chunk (ChunkReach).
template <typename scalar_t>
void spread_values_forward(const SpreadLayout& layout, int64_t tuples,
                           const int64_t* points, const scalar_t* means,
                           const scalar_t* sigmas, const scalar_t* values,
                           uint8_t* repeats, double* totals, scalar_t* out,
                           void* stream);

// Large chunks with a cut-off (spread_values_grid.h): first the keys
// [tuples * s] of the points' cells; the host sorts them (stable) into the
// GridReach's sorted_keys and order; then the forward (acc: double scratch
// [tuples * s]).
void spread_values_grid_keys(const SpreadLayout& layout, const SpreadGrid& grid,
                             const int64_t* points, int64_t* keys, void* stream);

template <typename scalar_t>
void spread_values_grid_forward(const GridReach& reach, int64_t tuples, const int64_t* points,
                                const scalar_t* means, const scalar_t* sigmas,
                                const scalar_t* values, uint8_t* repeats, double* totals,
                                double* acc, scalar_t* out, void* stream);

// The backward over either reach (ChunkReach or GridReach).
template <typename Reach, typename scalar_t>
void spread_values_backward(const Reach& reach, int64_t tuples, const int64_t* points,
                            const scalar_t* means, const scalar_t* sigmas,
                            const scalar_t* values, const scalar_t* grad, uint8_t* repeats,
                            scalar_t* grad_means, scalar_t* grad_sigmas,
                            scalar_t* grad_values, void* stream);

}  // namespace cuda
}  // namespace indexgrad
