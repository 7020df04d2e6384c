// Plain C++ interface of the CUDA kernels of sparse_contract (no torch
// headers, so the .cu compiles in about a second). Pointers are device
// pointers to contiguous buffers; `y` and `grad_x` must be zeroed by the
// caller. Launches on `stream` (a cudaStream_t passed as void*).
#pragma once

#include <cstdint>

#include "kernels/sparse_contract/sparse_contract_math.h"

namespace indexgrad {
namespace cuda {

template <typename scalar_t>
void sparse_contract_forward(const ContractLayout& layout, int64_t batch,
                             int64_t nnz, const int64_t* indices,
                             const scalar_t* values, const scalar_t* x,
                             scalar_t* y, void* stream);

template <typename scalar_t>
void sparse_contract_backward(const ContractLayout& layout, int64_t batch,
                              int64_t nnz, const int64_t* indices,
                              const scalar_t* values, const scalar_t* x,
                              const scalar_t* grad_y, scalar_t* grad_values,
                              scalar_t* grad_x, void* stream);


}  // namespace cuda
}  // namespace indexgrad
