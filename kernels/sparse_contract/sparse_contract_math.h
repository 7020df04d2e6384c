// Per-element math of sparse_contract, shared by the CPU kernel and the CUDA
// kernel (no torch headers: this file is included by nvcc).
//
// An index tuple (o_1..o_p, i_1..i_q) addresses W[b, o, i]; the output part
// is flattened row-major over out_shape, the input part over x's shape after
// the batch dimension (the paper's appendix A.2: a tensor contraction is a
// matrix product over flattened indices).
#pragma once

#include <cstdint>

#include "kernels/common/host_device.h"

namespace indexgrad {

// Largest rank of either part of a tuple (the output or the input part).
constexpr int kMaxContractRank = 8;

struct ContractLayout {
  int rank_out = 0;  // p
  int rank_in = 0;   // q
  int64_t out_numel = 1;
  int64_t in_numel = 1;
  int64_t out_strides[kMaxContractRank] = {};
  int64_t in_strides[kMaxContractRank] = {};
};

// Row-major flat index of tuple[0..rank) under `strides`.
INDEXGRAD_HD int64_t flat_index(const int64_t* tuple, const int64_t* strides,
                                int rank) {
  int64_t flat = 0;
  for (int d = 0; d < rank; ++d) flat += tuple[d] * strides[d];
  return flat;
}

// Flat output and input position of the tuple at `tuple`
// ([rank_out + rank_in] consecutive int64).
INDEXGRAD_HD void contract_positions(const ContractLayout& layout,
                                     const int64_t* tuple, int64_t* out_pos,
                                     int64_t* in_pos) {
  *out_pos = flat_index(tuple, layout.out_strides, layout.rank_out);
  *in_pos = flat_index(tuple + layout.rank_out, layout.in_strides,
                       layout.rank_in);
}

// The per-entry bodies: entry k of batch row b (flat t = b nnz + k) adds
// its product into y (forward) or writes its value gradient and adds its x
// gradient (backward), through add(scalar_t*, scalar_t): atomicAdd in the
// CUDA kernels (one thread per entry), += in the CPU loops, so the CPU tests
// against dense references check the bodies the GPU runs.
template <typename scalar_t, typename Add>
INDEXGRAD_HD void contract_entry_forward(const ContractLayout& layout, int64_t nnz,
                                         const int64_t* indices, const scalar_t* values,
                                         const scalar_t* x, scalar_t* y, int64_t b,
                                         int64_t k, const Add& add) {
  const int64_t t = b * nnz + k;
  int64_t o, i;
  contract_positions(layout, indices + t * (layout.rank_out + layout.rank_in), &o, &i);
  add(y + b * layout.out_numel + o, values[t] * x[b * layout.in_numel + i]);
}

template <typename scalar_t, typename Add>
INDEXGRAD_HD void contract_entry_backward(const ContractLayout& layout, int64_t nnz,
                                          const int64_t* indices, const scalar_t* values,
                                          const scalar_t* x, const scalar_t* grad_y,
                                          scalar_t* grad_values, scalar_t* grad_x,
                                          int64_t b, int64_t k, const Add& add) {
  const int64_t t = b * nnz + k;
  int64_t o, i;
  contract_positions(layout, indices + t * (layout.rank_out + layout.rank_in), &o, &i);
  const scalar_t gy = grad_y[b * layout.out_numel + o];
  grad_values[t] = gy * x[b * layout.in_numel + i];     // dy[o]/dvalues[k] = x[i]
  add(grad_x + b * layout.in_numel + i, values[t] * gy);  // duplicates add
}

}  // namespace indexgrad
