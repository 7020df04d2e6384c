// CUDA kernel of sample_tuples: one thread per output element, each running
// sample_element (sample_tuples_math.h), the rule the CPU tests check
// element by element against the CPU op. Counter-based draws: the same
// tuples as on the CPU, whatever the launch shape.
#include <cuda_runtime.h>

#include "kernels/common/cuda/grid_stride.h"
#include "kernels/sample_tuples/cuda/sample_tuples_kernel.h"

namespace indexgrad {
namespace cuda {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void sample_kernel(SampleLayout layout, int64_t total,
                              const scalar_t* __restrict__ means,
                              int64_t* __restrict__ out) {
  INDEXGRAD_GRID_STRIDE(i, total) {
    out[i] = sample_element(layout, means, i);
  }
}

}  // namespace

template <typename scalar_t>
void sample_tuples_forward(const SampleLayout& layout, int64_t tuples,
                           const scalar_t* means, int64_t* out, void* stream) {
  const int64_t total = tuples * layout.samples * layout.rank;
  if (total == 0) return;
  sample_kernel<scalar_t><<<blocks_for(total, kThreads), kThreads, 0,
                            static_cast<cudaStream_t>(stream)>>>(layout, total, means, out);
}

template void sample_tuples_forward<float>(const SampleLayout&, int64_t,
                                           const float*, int64_t*, void*);
template void sample_tuples_forward<double>(const SampleLayout&, int64_t,
                                            const double*, int64_t*, void*);

}  // namespace cuda
}  // namespace indexgrad
