// CUDA host entry of spread_values and its backward: the shared checks (one
// read-back of the means' and variances' NaN and minimum statistics: a
// synchronisation), device guard, stream, scratch, then the raw-pointer
// launchers of spread_values_kernel.cu: direct sums for small chunks, the
// cell grid for chunks of kSpreadGridMinPoints points or more with a
// cut-off (one more read-back: the points' extremes and the variances'
// mean, for the grid; and a stable sort of the cell keys on the device). Compiled only in CUDA builds (CMake
// on the GPU machine; compile-checked by `--config=cuda`).
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "kernels/common/cuda/launch_check.h"

#include "kernels/spread_values/cuda/spread_values_kernel.h"
#include "kernels/spread_values/spread_values.h"

namespace indexgrad {
namespace {

bool use_grid(const SpreadLayout& layout, double tolerance) {
  return tolerance > 0 && layout.chunk * layout.s >= detail::kSpreadGridMinPoints;
}

// The grid and the points' keys sorted on the device (the tensors own the
// memory reach points into).
struct SortedGrid {
  at::Tensor sorted_keys, order;
  GridReach reach;
};

SortedGrid sort_grid(const at::Tensor& points, const at::Tensor& sigmas,
                     const SpreadLayout& layout, void* stream) {
  const SpreadGrid grid = detail::make_spread_grid(points, sigmas, layout);
  at::Tensor keys = at::empty({grid.n}, points.options());
  cuda::spread_values_grid_keys(layout, grid, points.data_ptr<int64_t>(),
                                keys.data_ptr<int64_t>(), stream);
  SortedGrid g;
  std::tie(g.sorted_keys, g.order) = keys.sort(/*stable=*/true, 0, false);
  g.reach = GridReach{layout, grid, g.sorted_keys.data_ptr<int64_t>(),
                      g.order.data_ptr<int64_t>()};
  return g;
}

at::Tensor spread_values_cuda(const at::Tensor& points, const at::Tensor& means,
                              const at::Tensor& sigmas,
                              const at::Tensor& values, int64_t chunk_size,
                              double tolerance) {
  const char* op = "spread_values";
  cuda::check_on_cuda(op, "points", points);
  const c10::cuda::CUDAGuard guard(points.device());
  const int64_t chunk = detail::check_spread_values_args(
      op, points, means, sigmas, values, chunk_size, tolerance);
  at::Tensor out = at::empty({points.size(0), points.size(1), points.size(2)},
                             values.options());
  if (out.numel() == 0) return out;
  void* stream = at::cuda::getCurrentCUDAStream().stream();
  const SpreadLayout layout = detail::spread_layout(points, chunk, tolerance);
  const int64_t tuples = points.size(0) * points.size(1);
  const at::Tensor points_c = points.contiguous();
  const at::Tensor means_c = means.contiguous();
  const at::Tensor sigmas_c = sigmas.contiguous();
  const at::Tensor values_c = values.contiguous();
  at::Tensor repeats = at::empty({out.numel()}, points.options().dtype(at::kByte));
  at::Tensor totals = at::empty({tuples}, points.options().dtype(at::kDouble));
  if (use_grid(layout, tolerance)) {
    const SortedGrid g = sort_grid(points_c, sigmas_c, layout, stream);
    at::Tensor acc = at::empty({out.numel()}, points.options().dtype(at::kDouble));
    AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "spread_values_cuda_grid", [&] {
      cuda::spread_values_grid_forward<scalar_t>(
          g.reach, tuples, points_c.data_ptr<int64_t>(),
          means_c.data_ptr<scalar_t>(), sigmas_c.data_ptr<scalar_t>(),
          values_c.data_ptr<scalar_t>(), repeats.data_ptr<uint8_t>(),
          totals.data_ptr<double>(), acc.data_ptr<double>(), out.data_ptr<scalar_t>(), stream);
    });
    cuda::check_launch(op);
    return out;
  }
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "spread_values_cuda", [&] {
    cuda::spread_values_forward<scalar_t>(
        layout, tuples, points_c.data_ptr<int64_t>(),
        means_c.data_ptr<scalar_t>(), sigmas_c.data_ptr<scalar_t>(),
        values_c.data_ptr<scalar_t>(), repeats.data_ptr<uint8_t>(),
        totals.data_ptr<double>(), out.data_ptr<scalar_t>(), stream);
  });
  cuda::check_launch(op);
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> spread_values_backward_cuda(
    const at::Tensor& grad, const at::Tensor& points, const at::Tensor& means,
    const at::Tensor& sigmas, const at::Tensor& values, int64_t chunk_size,
    double tolerance) {
  const char* op = "_spread_values_backward";
  cuda::check_on_cuda(op, "points", points);
  const c10::cuda::CUDAGuard guard(points.device());
  const int64_t chunk = detail::check_spread_values_args(
      op, points, means, sigmas, values, chunk_size, tolerance);
  detail::check_spread_values_grad(op, grad, points, values);
  at::Tensor grad_means = at::zeros_like(means, at::MemoryFormat::Contiguous);
  at::Tensor grad_sigmas = at::zeros_like(sigmas, at::MemoryFormat::Contiguous);
  at::Tensor grad_values = at::zeros_like(values, at::MemoryFormat::Contiguous);
  if (grad.numel() == 0) return {grad_means, grad_sigmas, grad_values};
  void* stream = at::cuda::getCurrentCUDAStream().stream();
  const SpreadLayout layout = detail::spread_layout(points, chunk, tolerance);
  const int64_t tuples = points.size(0) * points.size(1);
  const at::Tensor points_c = points.contiguous();
  const at::Tensor means_c = means.contiguous();
  const at::Tensor sigmas_c = sigmas.contiguous();
  const at::Tensor values_c = values.contiguous();
  const at::Tensor grad_c = grad.contiguous();
  at::Tensor repeats = at::empty({grad.numel()}, points.options().dtype(at::kByte));
  const auto backward = [&](const auto& reach) {
    AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "spread_values_backward_cuda", [&] {
      cuda::spread_values_backward(
          reach, tuples, points_c.data_ptr<int64_t>(), means_c.data_ptr<scalar_t>(),
          sigmas_c.data_ptr<scalar_t>(), values_c.data_ptr<scalar_t>(),
          grad_c.data_ptr<scalar_t>(), repeats.data_ptr<uint8_t>(),
          grad_means.data_ptr<scalar_t>(), grad_sigmas.data_ptr<scalar_t>(),
          grad_values.data_ptr<scalar_t>(), stream);
    });
  };
  if (use_grid(layout, tolerance)) {
    backward(sort_grid(points_c, sigmas_c, layout, stream).reach);
  } else {
    backward(ChunkReach{layout});
  }
  cuda::check_launch(op);
  return {grad_means, grad_sigmas, grad_values};
}

}  // namespace

TORCH_LIBRARY_IMPL(indexgrad, CUDA, m) {
  m.impl("spread_values", TORCH_FN(spread_values_cuda));
  m.impl("_spread_values_backward", TORCH_FN(spread_values_backward_cuda));
}

}  // namespace indexgrad
