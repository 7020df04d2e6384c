// The CUDA kernels' per-thread bodies (half_permutation_threads.h), run here
// on the CPU for every thread index of small grids, pass by pass as the
// kernels run them, against the CPU ops: forward (ties, repeated
// candidates, every depth, a strided key column), the keys' backward,
// apply and its backward, and quicksort_levels composed of the bodies.
// Then the same on a GPU where there is one (skipped here).
#include "kernels/half_permutation/half_permutation_threads.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <vector>

#include "kernels/half_permutation/half_permutation.h"

namespace indexgrad {
namespace {

const auto kDouble = at::TensorOptions().dtype(at::kDouble);

double tolerance_of(at::ScalarType t) { return t == at::kDouble ? 1e-13 : 2e-6; }

// Passes 1-6 over every index: rows and weights [batch, n, S]. `keys`
// [batch, n] is a view of the buffer key_data, element e's key at
// key_data[e * L.key_stride].
template <typename scalar_t>
std::pair<at::Tensor, at::Tensor> forward_by_bodies(const at::Tensor& keys,
                                                    const BucketLayout& L,
                                                    at::ScalarType dtype) {
  const scalar_t* key_data = keys.data_ptr<scalar_t>();
  const int64_t S = L.num_candidates;
  const int64_t buckets = L.buckets(), candidates = buckets * S;
  const at::Tensor rank_tensor = detail::bucket_ranks(keys, L.s);
  const int64_t* ranks = rank_tensor.data_ptr<int64_t>();
  std::vector<double> medians(buckets), proportions(candidates);
  std::vector<uint8_t> bits(candidates * L.s), repeats(candidates);
  for (int64_t u = 0; u < buckets; ++u) medians[u] = bucket_median(L, key_data, ranks, u);
  for (int64_t c = 0; c < candidates; ++c) {
    proportions[c] =
        candidate_bits_and_logit(L, key_data, ranks, medians.data(), c, bits.data());
  }
  for (int64_t c = 0; c < candidates; ++c) repeats[c] = candidate_is_repeat(L, bits.data(), c);
  for (int64_t u = 0; u < buckets; ++u) {
    bucket_proportions(L, repeats.data(), proportions.data(), u);
  }
  at::Tensor rows = at::full({L.batch, L.n, S}, -1, at::kLong);
  at::Tensor weights = at::full({L.batch, L.n, S}, -1.0, at::TensorOptions().dtype(dtype));
  for (int64_t c = 0; c < candidates; ++c) {
    candidate_rows(L, bits.data(), proportions.data(), c, rows.data_ptr<int64_t>(),
                   weights.data_ptr<scalar_t>());
  }
  return {rows, weights};
}

// Passes 7-8: adds d loss / d key to out[e stride].
template <typename scalar_t>
void keys_backward_by_bodies(const BucketLayout& L, const at::Tensor& grad_weights,
                             const at::Tensor& rows, const at::Tensor& weights,
                             scalar_t* out, int64_t stride) {
  std::vector<double> logit_grads(L.buckets() * L.num_candidates);
  for (int64_t c = 0; c < static_cast<int64_t>(logit_grads.size()); ++c) {
    logit_grads[c] = candidate_logit_gradient(L, grad_weights.data_ptr<scalar_t>(), c);
  }
  for (int64_t e = 0; e < L.batch * L.n; ++e) {
    out[e * stride] += key_gradient(L, rows.data_ptr<int64_t>(), weights.data_ptr<scalar_t>(),
                                    logit_grads.data(), e);
  }
}

struct PlainAdd {
  template <typename scalar_t>
  void operator()(scalar_t* at, scalar_t value) const { *at += value; }
};

// Passes 9-10: y = P v or P^T v, values [batch, n, f] contiguous.
template <typename scalar_t>
at::Tensor apply_by_bodies(const at::Tensor& rows, const at::Tensor& weights,
                           const at::Tensor& values, bool transpose) {
  const ApplyLayout A{rows.size(1), rows.size(2), values.size(2)};
  at::Tensor y = at::zeros_like(values);
  const int64_t elements = rows.size(0) * A.n;
  for (int64_t t = 0; t < elements; ++t) {
    for (int64_t c = 0; c < A.f; ++c) {
      if (transpose) {
        y.data_ptr<scalar_t>()[t * A.f + c] =
            gather_element(A, rows.data_ptr<int64_t>(), weights.data_ptr<scalar_t>(),
                           values.data_ptr<scalar_t>(), t, c);
      } else {
        scatter_element(A, rows.data_ptr<int64_t>(), weights.data_ptr<scalar_t>(),
                        values.data_ptr<scalar_t>(), t, c, y.data_ptr<scalar_t>(), PlainAdd{});
      }
    }
  }
  return y;
}

// Pass 11.
template <typename scalar_t>
at::Tensor weight_grads_by_bodies(const at::Tensor& rows, const at::Tensor& col_side,
                                  const at::Tensor& row_side) {
  const ApplyLayout A{rows.size(1), rows.size(2), col_side.size(2)};
  at::Tensor gw = at::empty(rows.sizes(), col_side.options());
  for (int64_t q = 0; q < rows.numel(); ++q) {
    gw.data_ptr<scalar_t>()[q] =
        weight_gradient(A, rows.data_ptr<int64_t>(), col_side.data_ptr<scalar_t>(),
                        row_side.data_ptr<scalar_t>(), q);
  }
  return gw;
}

BucketLayout layout_for(const at::Tensor& keys, int64_t depth, int64_t num_samples,
                        double temperature, int64_t seed, int64_t stride = 1) {
  return {keys.size(0), keys.size(1), keys.size(1) >> depth, 1 + num_samples, depth,
          stride, temperature, static_cast<uint64_t>(seed)};
}

// Keys with ties (a quarter rounded to a coarse grid).
at::Tensor keys_with_ties(int64_t batch, int64_t n, at::ScalarType dtype) {
  at::Tensor k = at::randn({batch, n}, kDouble);
  k.narrow(1, 0, n / 4).mul_(2).round_();
  return k.to(dtype);
}

TEST(HalfPermutationThreads, ForwardBodiesEqualTheCpuOp) {
  at::manual_seed(11);
  for (auto dtype : {at::kDouble, at::kFloat}) {
    for (auto [n, depth, samples] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
             {2, 0, 6}, {4, 1, 9}, {8, 0, 3}, {16, 2, 4}, {32, 1, 0}, {64, 3, 20}}) {
      const at::Tensor keys = keys_with_ties(3, n, dtype);
      auto [rows, weights] = half_permutation(keys, depth, samples, 3.0, 17);
      const BucketLayout L = layout_for(keys, depth, samples, 3.0, 17);
      AT_DISPATCH_FLOATING_TYPES(dtype, "test", [&] {
        auto [r, w] = forward_by_bodies<scalar_t>(keys, L, dtype);
        EXPECT_TRUE(at::equal(r, rows)) << n << " " << depth << " " << dtype;
        EXPECT_TRUE(at::allclose(w, weights, tolerance_of(dtype), 1e-15))
            << n << " " << depth << " " << dtype;
      });
    }
  }
}

TEST(HalfPermutationThreads, RepeatedCandidatesGetNothing) {
  // Buckets of 2 have two balanced vectors: 9 candidates repeat them.
  const at::Tensor keys = at::tensor({0.3, -0.2, 1.0, 1.0}, kDouble).view({1, 4});
  const BucketLayout L = layout_for(keys, 1, 8, 2.0, 4);
  auto [r, w] = forward_by_bodies<double>(keys, L, at::kDouble);
  auto [rows, weights] = half_permutation(keys, 1, 8, 2.0, 4);
  EXPECT_TRUE(at::equal(r, rows));
  EXPECT_TRUE(at::allclose(w, weights, 1e-15, 0));
  EXPECT_GE((w.select(1, 0) == 0).sum().item<int64_t>(), 7);  // at most 2 distinct
  EXPECT_NEAR(w.sum(2).select(1, 0).item<double>(), 1.0, 1e-15);
}

TEST(HalfPermutationThreads, StridedKeysEqualTheCpuOpOnTheKeyColumn) {
  // quicksort_levels reads the keys as column 0 of [batch, n, 1 + f].
  at::manual_seed(12);
  const at::Tensor kx = at::randn({2, 16, 3}, kDouble);
  const at::Tensor keys = kx.select(2, 0).contiguous();
  auto [rows, weights] = half_permutation(keys, 1, 5, 4.0, 9);
  auto [r, w] = forward_by_bodies<double>(kx.select(2, 0), layout_for(keys, 1, 5, 4.0, 9, 3),
                                          at::kDouble);
  EXPECT_TRUE(at::equal(r, rows));
  EXPECT_TRUE(at::allclose(w, weights, 1e-15, 0));
}

TEST(HalfPermutationThreads, KeyGradientBodiesEqualTheCpuBackward) {
  at::manual_seed(13);
  for (auto dtype : {at::kDouble, at::kFloat}) {
    for (auto [n, depth] : std::vector<std::pair<int64_t, int64_t>>{{2, 0}, {16, 0}, {16, 2},
                                                                   {64, 1}}) {
      const at::Tensor keys = keys_with_ties(2, n, dtype);
      auto [rows, weights] = half_permutation(keys, depth, 5, 2.5, 3);
      const at::Tensor grad = at::randn(weights.sizes(), kDouble).to(dtype);
      const at::Tensor expected =
          detail::_half_permutation_backward(grad, keys, rows, weights, depth, 2.5);
      at::Tensor got = at::zeros_like(keys);
      AT_DISPATCH_FLOATING_TYPES(dtype, "test", [&] {
        keys_backward_by_bodies<scalar_t>(layout_for(keys, depth, 5, 2.5, 3), grad, rows,
                                          weights, got.data_ptr<scalar_t>(), 1);
      });
      EXPECT_TRUE(at::allclose(got, expected, tolerance_of(dtype), tolerance_of(dtype)))
          << n << " " << depth << " " << dtype;
    }
  }
}

TEST(HalfPermutationThreads, ApplyBodiesEqualTheCpuOpBothWays) {
  at::manual_seed(14);
  for (auto dtype : {at::kDouble, at::kFloat}) {
    for (int64_t f : {1, 3}) {
      const at::Tensor keys = at::randn({2, 16}, kDouble).to(dtype);
      auto [rows, weights] = half_permutation(keys, 1, 3, 2.0, 8);
      const at::Tensor values = at::randn({2, 16, f}, kDouble).to(dtype);
      const at::Tensor grad = at::randn({2, 16, f}, kDouble).to(dtype);
      const double tol = tolerance_of(dtype);
      for (bool transpose : {false, true}) {
        AT_DISPATCH_FLOATING_TYPES(dtype, "test", [&] {
          EXPECT_TRUE(at::allclose(apply_by_bodies<scalar_t>(rows, weights, values, transpose),
                                   half_permutation_apply(rows, weights, values, transpose),
                                   tol, tol))
              << transpose;
          auto [gv, gw] = detail::_half_permutation_apply_backward(grad, rows, weights, values,
                                                                   transpose);
          EXPECT_TRUE(at::allclose(apply_by_bodies<scalar_t>(rows, weights, grad, !transpose),
                                   gv, tol, tol));
          EXPECT_TRUE(at::allclose(
              weight_grads_by_bodies<scalar_t>(rows, transpose ? grad : values,
                                               transpose ? values : grad),
              gw, tol, tol));
        });
      }
    }
  }
}

// The CUDA host entry's loop over levels, with the bodies for kernels.
TEST(HalfPermutationThreads, QuicksortLevelsComposedOfBodiesEqualTheCpuOp) {
  at::manual_seed(15);
  const int64_t batch = 2, n = 16, f1 = 3, S = 4, L = 4;
  const at::Tensor keys = at::randn({batch, n}, kDouble);
  const at::Tensor values = at::randn({batch, n, f1 - 1}, kDouble);
  auto [levels, rows, weights] = quicksort_levels(keys, values, S - 1, 3.0, 40);
  at::Tensor in = at::cat({keys.unsqueeze(2), values}, 2).contiguous();
  const at::Tensor kx0 = in;
  std::vector<at::Tensor> inputs;
  for (int64_t d = 0; d < L; ++d) {
    inputs.push_back(in);
    auto [r, w] = forward_by_bodies<double>(in.select(2, 0),
                                            layout_for(keys, d, S - 1, 3.0, 40 + d, f1),
                                            at::kDouble);
    EXPECT_TRUE(at::equal(r, rows[d])) << d;
    EXPECT_TRUE(at::allclose(w, weights[d], 1e-15, 0)) << d;
    in = apply_by_bodies<double>(r, w, in, false);
    EXPECT_TRUE(at::allclose(in, levels[d], 1e-13, 1e-14)) << d;
  }
  std::vector<at::Tensor> grads;
  for (int64_t d = 0; d < L; ++d) grads.push_back(at::randn({batch, n, f1}, kDouble));
  auto [gk, gv] = detail::_quicksort_levels_backward(grads, keys, values, levels, rows,
                                                     weights, 3.0);
  at::Tensor g = grads[L - 1].clone();
  for (int64_t d = L - 1; d >= 0; --d) {
    at::Tensor grad_in = apply_by_bodies<double>(rows[d], weights[d], g, true);
    const at::Tensor gw = weight_grads_by_bodies<double>(rows[d], inputs[d], g);
    keys_backward_by_bodies<double>(layout_for(keys, d, S - 1, 3.0, 0, f1), gw, rows[d],
                                    weights[d], grad_in.data_ptr<double>(), f1);
    if (d > 0) grad_in.add_(grads[d - 1]);
    g = grad_in;
  }
  EXPECT_TRUE(at::allclose(g.select(2, 0), gk, 1e-12, 1e-13));
  EXPECT_TRUE(at::allclose(g.narrow(2, 1, f1 - 1), gv, 1e-12, 1e-13));
}

// The launches: the same ops on a GPU against the CPU (atomics only in the
// scatter of apply, within rounding).
TEST(HalfPermutationThreads, CudaEqualsCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  at::manual_seed(16);
  for (auto dtype : {at::kDouble, at::kFloat}) {
    const double tol = tolerance_of(dtype) * 10;
    const at::Tensor keys = keys_with_ties(4, 64, dtype);
    for (int64_t depth : {0, 2}) {
      auto [rows, weights] = half_permutation(keys, depth, 6, 3.0, 21);
      auto [r, w] = half_permutation(keys.cuda(), depth, 6, 3.0, 21);
      EXPECT_TRUE(at::equal(r.cpu(), rows)) << depth;
      EXPECT_TRUE(at::allclose(w.cpu(), weights, tol, tol)) << depth;
      const at::Tensor grad = at::randn(weights.sizes(), kDouble).to(dtype);
      EXPECT_TRUE(at::allclose(
          detail::_half_permutation_backward(grad.cuda(), keys.cuda(), r, w, depth, 3.0).cpu(),
          detail::_half_permutation_backward(grad, keys, rows, weights, depth, 3.0), tol, tol));
      const at::Tensor values = at::randn({4, 64, 3}, kDouble).to(dtype);
      for (bool transpose : {false, true}) {
        EXPECT_TRUE(at::allclose(half_permutation_apply(r, w, values.cuda(), transpose).cpu(),
                                 half_permutation_apply(rows, weights, values, transpose), tol,
                                 tol));
        auto [gv, gw] = detail::_half_permutation_apply_backward(values.cuda(), r, w,
                                                                 values.cuda(), transpose);
        auto [ev, ew] = detail::_half_permutation_apply_backward(values, rows, weights, values,
                                                                 transpose);
        EXPECT_TRUE(at::allclose(gv.cpu(), ev, tol, tol));
        EXPECT_TRUE(at::allclose(gw.cpu(), ew, tol, tol));
      }
    }
    const at::Tensor values = at::randn({4, 64, 2}, kDouble).to(dtype);
    auto [levels, qrows, qweights] = quicksort_levels(keys, values, 3, 2.0, 5);
    auto [glevels, grows, gweights] = quicksort_levels(keys.cuda(), values.cuda(), 3, 2.0, 5);
    std::vector<at::Tensor> grads, ggrads;
    for (size_t d = 0; d < levels.size(); ++d) {
      EXPECT_TRUE(at::equal(grows[d].cpu(), qrows[d])) << d;
      EXPECT_TRUE(at::allclose(glevels[d].cpu(), levels[d], tol, tol)) << d;
      grads.push_back(at::randn(levels[d].sizes(), kDouble).to(dtype));
      ggrads.push_back(grads.back().cuda());
    }
    auto [gk, gv] = detail::_quicksort_levels_backward(grads, keys, values, levels, qrows,
                                                       qweights, 2.0);
    auto [ck, cv] = detail::_quicksort_levels_backward(ggrads, keys.cuda(), values.cuda(),
                                                       glevels, grows, gweights, 2.0);
    EXPECT_TRUE(at::allclose(ck.cpu(), gk, tol * 10, tol * 10));
    EXPECT_TRUE(at::allclose(cv.cpu(), gv, tol * 10, tol * 10));
  }
}

}  // namespace
}  // namespace indexgrad
