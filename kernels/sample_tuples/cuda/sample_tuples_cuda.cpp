// CUDA host entry of sample_tuples: checks (one read-back of the means'
// NaN and range statistics: a synchronisation), device guard, stream, then
// the raw-pointer launcher of sample_tuples_kernel.cu. Compiled only in
// CUDA builds (CMake on the GPU machine; compile-checked by
// `--config=cuda`).
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "kernels/common/cuda/launch_check.h"

#include "kernels/sample_tuples/cuda/sample_tuples_kernel.h"
#include "kernels/sample_tuples/sample_tuples.h"

namespace indexgrad {
namespace {

at::Tensor sample_tuples_cuda(const at::Tensor& means, at::IntArrayRef sizes,
                              int64_t num_global, int64_t num_local,
                              at::IntArrayRef region, int64_t seed) {
  const char* op = "sample_tuples";
  cuda::check_on_cuda(op, "means", means);
  const c10::cuda::CUDAGuard guard(means.device());
  const SampleLayout layout = detail::check_sample_tuples_args(
      op, means, sizes, num_global, num_local, region, seed);
  void* stream = at::cuda::getCurrentCUDAStream().stream();
  const int64_t batch = means.size(0), k = means.size(1);
  at::Tensor out = at::empty({batch, k, layout.samples, layout.rank},
                             means.options().dtype(at::kLong));
  if (out.numel() == 0) return out;
  const at::Tensor means_c = means.contiguous();
  AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "sample_tuples_cuda", [&] {
    cuda::sample_tuples_forward<scalar_t>(layout, batch * k,
                                          means_c.data_ptr<scalar_t>(),
                                          out.data_ptr<int64_t>(), stream);
  });
  cuda::check_launch(op);
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(indexgrad, CUDA, m) {
  m.impl("sample_tuples", TORCH_FN(sample_tuples_cuda));
}

}  // namespace indexgrad
