// CUDA host entries of half_permutation, half_permutation_apply,
// quicksort_levels and their backwards: the shared checks, device guard,
// stream, empty-input return, contiguous inputs, dtype dispatch, the
// launchers of half_permutation_kernel.cu, the launch check. Value checks
// read back once per call (a synchronisation each): keys finite (forward),
// rows in range or in their buckets (apply and backwards); the CPU kernels
// fold them into their loops instead. Compiled only in CUDA builds (CMake
// on the GPU machine; compile-checked by `--config=cuda`).
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "kernels/common/cuda/launch_check.h"
#include "kernels/half_permutation/cuda/half_permutation_kernel.h"
#include "kernels/half_permutation/half_permutation.h"

namespace indexgrad {
namespace {

void* current_stream() { return at::cuda::getCurrentCUDAStream().stream(); }

void check_keys_finite(const char* op, const at::Tensor& keys) {
  TORCH_CHECK(keys.numel() == 0 || at::isfinite(keys).all().item<bool>(), op,
              ": keys contain NaN or infinity");
}

// Ranks and scratch of one level for keys [batch, n] (any strides) and S
// candidates per bucket.
struct Scratch {
  at::Tensor ranks, medians, bits, proportions, repeats;
  Scratch(const at::Tensor& keys, int64_t s, int64_t S) {
    const int64_t batch = keys.size(0), n = keys.size(1), buckets = batch * (n / s);
    const at::Tensor& like = keys;
    ranks = detail::bucket_ranks(keys, s);
    medians = at::empty({buckets}, like.options().dtype(at::kDouble));
    bits = at::empty({buckets * S * s}, like.options().dtype(at::kByte));
    proportions = at::empty({buckets * S}, like.options().dtype(at::kDouble));
    repeats = at::empty({buckets * S}, like.options().dtype(at::kByte));
  }
  cuda::BucketScratch view() {
    return {ranks.data_ptr<int64_t>(), medians.data_ptr<double>(), bits.data_ptr<uint8_t>(),
            proportions.data_ptr<double>(), repeats.data_ptr<uint8_t>()};
  }
};

BucketLayout layout_of(int64_t batch, int64_t n, int64_t depth, int64_t S,
                       int64_t key_stride, double temperature, int64_t seed) {
  return {batch, n, n >> depth, S, depth, key_stride, temperature,
          static_cast<uint64_t>(seed)};
}

std::tuple<at::Tensor, at::Tensor> half_permutation_cuda(const at::Tensor& keys, int64_t depth,
                                                         int64_t num_samples,
                                                         double temperature, int64_t seed) {
  const char* op = "half_permutation";
  cuda::check_on_cuda(op, "keys", keys);
  const c10::cuda::CUDAGuard guard(keys.device());
  detail::check_half_permutation_args(op, keys, depth, num_samples, temperature);
  const int64_t batch = keys.size(0), n = keys.size(1), S = 1 + num_samples;
  at::Tensor rows = at::empty({batch, n, S}, keys.options().dtype(at::kLong));
  at::Tensor weights = at::empty({batch, n, S}, keys.options());
  if (rows.numel() == 0) return {rows, weights};
  check_keys_finite(op, keys);
  const at::Tensor k = keys.contiguous();
  const BucketLayout layout = layout_of(batch, n, depth, S, 1, temperature, seed);
  Scratch scratch(k, layout.s, S);
  AT_DISPATCH_FLOATING_TYPES(keys.scalar_type(), "half_permutation_cuda", [&] {
    cuda::half_permutation_forward<scalar_t>(layout, k.data_ptr<scalar_t>(), scratch.view(),
                                             rows.data_ptr<int64_t>(),
                                             weights.data_ptr<scalar_t>(), current_stream());
  });
  cuda::check_launch(op);
  return {rows, weights};
}

at::Tensor half_permutation_backward_cuda(const at::Tensor& grad_weights, const at::Tensor& keys,
                                          const at::Tensor& rows, const at::Tensor& weights,
                                          int64_t depth, double temperature) {
  const char* op = "_half_permutation_backward";
  cuda::check_on_cuda(op, "keys", keys);
  const c10::cuda::CUDAGuard guard(keys.device());
  detail::check_half_permutation_args(op, keys, depth, /*num_samples=*/0, temperature);
  detail::check_apply_args(op, rows, weights, keys);
  TORCH_CHECK(grad_weights.sizes() == weights.sizes(), op,
              ": grad_weights must have the shape of weights ", weights.sizes(), ", got ",
              grad_weights.sizes());
  TORCH_CHECK(grad_weights.scalar_type() == keys.scalar_type(), op,
              ": grad_weights must have the dtype of keys, got ", grad_weights.scalar_type());
  cuda::check_on_cuda(op, "grad_weights", grad_weights);
  at::Tensor grad_keys = at::zeros_like(keys, at::MemoryFormat::Contiguous);
  if (rows.numel() == 0) return grad_keys;
  const int64_t batch = keys.size(0), n = keys.size(1), S = rows.size(2);
  const BucketLayout layout = layout_of(batch, n, depth, S, 1, temperature, 0);
  detail::check_rows_in_buckets(op, rows, layout.s);
  const at::Tensor rc = rows.contiguous(), wc = weights.contiguous(),
                   gc = grad_weights.contiguous();
  at::Tensor logit_grads = at::empty({layout.buckets() * S}, keys.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(keys.scalar_type(), "half_permutation_backward_cuda", [&] {
    cuda::half_permutation_keys_backward<scalar_t>(
        layout, gc.data_ptr<scalar_t>(), rc.data_ptr<int64_t>(), wc.data_ptr<scalar_t>(),
        logit_grads.data_ptr<double>(), grad_keys.data_ptr<scalar_t>(), 1, current_stream());
  });
  cuda::check_launch(op);
  return grad_keys;
}

int64_t features_of(const at::Tensor& values) {
  return values.size(0) * values.size(1) == 0
             ? 0
             : values.numel() / (values.size(0) * values.size(1));
}

at::Tensor half_permutation_apply_cuda(const at::Tensor& rows, const at::Tensor& weights,
                                       const at::Tensor& values, bool transpose) {
  const char* op = "half_permutation_apply";
  cuda::check_on_cuda(op, "values", values);
  const c10::cuda::CUDAGuard guard(values.device());
  detail::check_apply_args(op, rows, weights, values);
  at::Tensor y = at::zeros_like(values, at::MemoryFormat::Contiguous);
  if (y.numel() == 0 || rows.size(2) == 0) return y;
  detail::check_rows_in_range(op, rows);
  const at::Tensor rc = rows.contiguous(), wc = weights.contiguous(), vc = values.contiguous();
  const ApplyLayout layout{rows.size(1), rows.size(2), features_of(values)};
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "half_permutation_apply_cuda", [&] {
    cuda::half_permutation_apply<scalar_t>(layout, rows.size(0), rc.data_ptr<int64_t>(),
                                           wc.data_ptr<scalar_t>(), vc.data_ptr<scalar_t>(),
                                           transpose, y.data_ptr<scalar_t>(), current_stream());
  });
  cuda::check_launch(op);
  return y;
}

std::tuple<at::Tensor, at::Tensor> half_permutation_apply_backward_cuda(
    const at::Tensor& grad, const at::Tensor& rows, const at::Tensor& weights,
    const at::Tensor& values, bool transpose) {
  const char* op = "_half_permutation_apply_backward";
  cuda::check_on_cuda(op, "values", values);
  const c10::cuda::CUDAGuard guard(values.device());
  detail::check_apply_args(op, rows, weights, values);
  TORCH_CHECK(grad.sizes() == values.sizes(), op, ": grad must have the shape of values ",
              values.sizes(), ", got ", grad.sizes());
  TORCH_CHECK(grad.scalar_type() == values.scalar_type(), op,
              ": grad must have the dtype of values, got ", grad.scalar_type());
  cuda::check_on_cuda(op, "grad", grad);
  at::Tensor grad_values = at::zeros_like(values, at::MemoryFormat::Contiguous);
  at::Tensor grad_weights = at::zeros_like(weights, at::MemoryFormat::Contiguous);
  if (values.numel() == 0 || rows.size(2) == 0) return {grad_values, grad_weights};
  detail::check_rows_in_range(op, rows);
  const at::Tensor rc = rows.contiguous(), wc = weights.contiguous(), vc = values.contiguous(),
                   gc = grad.contiguous();
  const ApplyLayout layout{rows.size(1), rows.size(2), features_of(values)};
  const int64_t batch = rows.size(0);
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "half_permutation_apply_backward_cuda", [&] {
    const int64_t* rp = rc.data_ptr<int64_t>();
    const scalar_t* g = gc.data_ptr<scalar_t>();
    const scalar_t* v = vc.data_ptr<scalar_t>();
    void* stream = current_stream();
    // The gradient of y = P v is P^T g, of y = P^T v is P g.
    cuda::half_permutation_apply<scalar_t>(layout, batch, rp, wc.data_ptr<scalar_t>(), g,
                                           !transpose, grad_values.data_ptr<scalar_t>(),
                                           stream);
    // P: (v[b,i], g[b,r]); P^T: (g[b,i], v[b,r]).
    cuda::half_permutation_weight_grads<scalar_t>(layout, batch, rp, transpose ? g : v,
                                                  transpose ? v : g,
                                                  grad_weights.data_ptr<scalar_t>(), stream);
  });
  cuda::check_launch(op);
  return {grad_values, grad_weights};
}

using TensorVector = std::vector<at::Tensor>;

// The CPU op's loop over levels, each level's passes on the GPU.
std::tuple<TensorVector, TensorVector, TensorVector> quicksort_levels_cuda(
    const at::Tensor& keys, const at::Tensor& values, int64_t num_samples, double temperature,
    int64_t seed) {
  const char* op = "quicksort_levels";
  cuda::check_on_cuda(op, "keys", keys);
  const c10::cuda::CUDAGuard guard(keys.device());
  detail::check_quicksort_args(op, keys, values, num_samples, temperature);
  const int64_t batch = keys.size(0), n = keys.size(1), f1 = values.size(2) + 1;
  const int64_t L = detail::quicksort_level_count(n), S = 1 + num_samples;
  check_keys_finite(op, keys);  // later levels mix finite keys: finite
  const at::Tensor kx0 = at::cat({keys.unsqueeze(2), values}, 2).contiguous();
  TensorVector levels, rows, weights;
  AT_DISPATCH_FLOATING_TYPES(keys.scalar_type(), "quicksort_levels_cuda", [&] {
    const scalar_t* in = kx0.data_ptr<scalar_t>();
    void* stream = current_stream();
    for (int64_t d = 0; d < L; ++d) {
      levels.push_back(at::zeros({batch, n, f1}, keys.options()));
      rows.push_back(at::empty({batch, n, S}, keys.options().dtype(at::kLong)));
      weights.push_back(at::empty({batch, n, S}, keys.options()));
      if (batch == 0) continue;
      const BucketLayout layout = layout_of(batch, n, d, S, f1, temperature, seed + d);
      Scratch scratch(d == 0 ? kx0.select(2, 0) : levels[d - 1].select(2, 0), layout.s, S);
      int64_t* r = rows.back().data_ptr<int64_t>();
      scalar_t* w = weights.back().data_ptr<scalar_t>();
      scalar_t* out = levels.back().data_ptr<scalar_t>();
      cuda::half_permutation_forward<scalar_t>(layout, in, scratch.view(), r, w, stream);
      cuda::half_permutation_apply<scalar_t>({n, S, f1}, batch, r, w, in, false, out, stream);
      in = out;
    }
  });
  cuda::check_launch(op);
  return {levels, rows, weights};
}

std::tuple<at::Tensor, at::Tensor> quicksort_levels_backward_cuda(
    at::TensorList grad_levels, const at::Tensor& keys, const at::Tensor& values,
    at::TensorList levels, at::TensorList rows, at::TensorList weights, double temperature) {
  const char* op = "_quicksort_levels_backward";
  cuda::check_on_cuda(op, "keys", keys);
  const c10::cuda::CUDAGuard guard(keys.device());
  detail::check_quicksort_backward_args(op, grad_levels, keys, values, levels, rows, weights,
                                        temperature);
  const int64_t batch = keys.size(0), n = keys.size(1), f1 = values.size(2) + 1;
  const int64_t L = detail::quicksort_level_count(n), S = L > 0 ? rows[0].size(-1) : 1;
  for (int64_t d = 0; d < L; ++d) detail::check_rows_in_buckets(op, rows[d], n >> d);
  const at::Tensor kx0 = at::cat({keys.unsqueeze(2), values}, 2).contiguous();
  at::Tensor g = grad_levels[L - 1].contiguous().clone();
  at::Tensor grad_in = at::empty_like(g);
  at::Tensor grad_w = at::empty({batch, n, S}, keys.options());
  at::Tensor logit_grads = at::empty({batch * n * S}, keys.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(keys.scalar_type(), "quicksort_levels_backward_cuda", [&] {
    void* stream = current_stream();
    for (int64_t d = L - 1; d >= 0; --d) {
      const BucketLayout layout = layout_of(batch, n, d, S, f1, temperature, 0);
      const at::Tensor rc = rows[d].contiguous(), wc = weights[d].contiguous();
      const at::Tensor input = d == 0 ? kx0 : levels[d - 1].contiguous();
      const int64_t* r = rc.data_ptr<int64_t>();
      const scalar_t* w = wc.data_ptr<scalar_t>();
      // y = P in: d in = P^T g (values and the key column alike) ...
      cuda::half_permutation_apply<scalar_t>({n, S, f1}, batch, r, w, g.data_ptr<scalar_t>(),
                                             true, grad_in.data_ptr<scalar_t>(), stream);
      // ... plus, through P's weights, the keys this level sorted by.
      cuda::half_permutation_weight_grads<scalar_t>({n, S, f1}, batch, r,
                                                    input.data_ptr<scalar_t>(),
                                                    g.data_ptr<scalar_t>(),
                                                    grad_w.data_ptr<scalar_t>(), stream);
      cuda::half_permutation_keys_backward<scalar_t>(
          layout, grad_w.data_ptr<scalar_t>(), r, w, logit_grads.data_ptr<double>(),
          grad_in.data_ptr<scalar_t>(), f1, stream);
      if (d > 0) grad_in.add_(grad_levels[d - 1]);  // the loss also reads this level's input
      std::swap(g, grad_in);
    }
  });
  cuda::check_launch(op);
  return {g.select(2, 0).contiguous(), g.narrow(2, 1, f1 - 1).contiguous()};
}

}  // namespace

TORCH_LIBRARY_IMPL(indexgrad, CUDA, m) {
  m.impl("half_permutation", TORCH_FN(half_permutation_cuda));
  m.impl("_half_permutation_backward", TORCH_FN(half_permutation_backward_cuda));
  m.impl("half_permutation_apply", TORCH_FN(half_permutation_apply_cuda));
  m.impl("_half_permutation_apply_backward", TORCH_FN(half_permutation_apply_backward_cuda));
  m.impl("quicksort_levels", TORCH_FN(quicksort_levels_cuda));
  m.impl("_quicksort_levels_backward", TORCH_FN(quicksort_levels_backward_cuda));
}

}  // namespace indexgrad
