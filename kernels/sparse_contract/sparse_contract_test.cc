// Tests of sparse_contract: equality with an independent dense reference
// (scatter into W with loops, then a matmul), finite-difference gradients in
// double, duplicates, empty input, rank-3 tuples, and bad input.
#include "kernels/sparse_contract/sparse_contract.h"

#include <gtest/gtest.h>
#include <torch/autograd.h>
#include <torch/cuda.h>

#include "kernels/testing/expect_error.h"
#include "kernels/testing/gradcheck.h"

namespace indexgrad {
namespace {

const auto kDouble = at::TensorOptions().dtype(at::kDouble);
const auto kLong = at::TensorOptions().dtype(at::kLong);

// Random tuples in [0, bounds[d]) per component: [batch, nnz, len(bounds)].
at::Tensor random_tuples(int64_t batch, int64_t nnz,
                         std::vector<int64_t> bounds) {
  std::vector<at::Tensor> cols;
  for (int64_t b : bounds) cols.push_back(at::randint(b, {batch, nnz, 1}, kLong));
  return at::cat(cols, 2);
}

// Dense reference written with plain loops: W[b, out_flat, in_flat] +=
// values[b, k]; y = W @ x_flat.
at::Tensor dense_reference(const at::Tensor& indices, const at::Tensor& values,
                           std::vector<int64_t> out_shape,
                           const at::Tensor& x) {
  const int64_t batch = x.size(0);
  int64_t out_numel = 1;
  for (int64_t s : out_shape) out_numel *= s;
  const int64_t in_numel = x[0].numel();
  const int64_t rank_out = out_shape.size();
  const int64_t rank = indices.size(2);
  at::Tensor w = at::zeros({batch, out_numel, in_numel}, x.options());
  auto idx = indices.accessor<int64_t, 3>();
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t k = 0; k < indices.size(1); ++k) {
      int64_t o = 0, i = 0;
      for (int64_t d = 0; d < rank_out; ++d) o = o * out_shape[d] + idx[b][k][d];
      for (int64_t d = rank_out; d < rank; ++d) {
        i = i * x.size(d - rank_out + 1) + idx[b][k][d];
      }
      w[b][o][i] += values[b][k];
    }
  }
  std::vector<int64_t> shape{batch};
  shape.insert(shape.end(), out_shape.begin(), out_shape.end());
  return at::bmm(w, x.reshape({batch, in_numel, 1})).reshape(shape);
}

TEST(SparseContract, MatchesDenseReferenceRank2) {
  at::manual_seed(0);
  for (int trial = 0; trial < 5; ++trial) {
    const int64_t batch = 1 + trial, n_out = 3 + 2 * trial, n_in = 4 + trial;
    const int64_t nnz = 10 * (trial + 1);
    const at::Tensor indices = random_tuples(batch, nnz, {n_out, n_in});
    const at::Tensor values = at::randn({batch, nnz}, kDouble);
    const at::Tensor x = at::randn({batch, n_in}, kDouble);
    const at::Tensor y = sparse_contract(indices, values, {n_out}, x);
    EXPECT_TRUE(at::allclose(y, dense_reference(indices, values, {n_out}, x)))
        << "trial " << trial;
  }
}

TEST(SparseContract, MatchesDenseReferenceRank3And5) {
  at::manual_seed(1);
  // Rank-3 tuples: [2, 3] outputs from a vector input.
  at::Tensor indices = random_tuples(2, 40, {2, 3, 5});
  at::Tensor values = at::randn({2, 40}, kDouble);
  at::Tensor x = at::randn({2, 5}, kDouble);
  EXPECT_TRUE(at::allclose(sparse_contract(indices, values, {2, 3}, x),
                           dense_reference(indices, values, {2, 3}, x)));
  // Rank-5 tuples: [3, 2] outputs from a [4, 2, 3] input.
  indices = random_tuples(3, 60, {3, 2, 4, 2, 3});
  values = at::randn({3, 60}, kDouble);
  x = at::randn({3, 4, 2, 3}, kDouble);
  EXPECT_TRUE(at::allclose(sparse_contract(indices, values, {3, 2}, x),
                           dense_reference(indices, values, {3, 2}, x)));
}

TEST(SparseContract, DuplicatesAddUp) {
  // Three copies of (1, 0) with values 1, 2, 3 act as one entry of 6.
  const at::Tensor indices =
      at::tensor({1, 0, 1, 0, 1, 0, 0, 1}, kLong).reshape({1, 4, 2});
  const at::Tensor values = at::tensor({1.0, 2.0, 3.0, 0.5}, kDouble).reshape({1, 4});
  const at::Tensor x = at::tensor({10.0, 20.0}, kDouble).reshape({1, 2});
  const at::Tensor y = sparse_contract(indices, values, {2}, x);
  EXPECT_TRUE(at::allclose(y, at::tensor({0.5 * 20.0, 6.0 * 10.0}, kDouble)
                                  .reshape({1, 2})));
}

TEST(SparseContract, EmptyInputs) {
  // No entries: y is zero.
  const at::Tensor x = at::randn({2, 3}, kDouble);
  const at::Tensor y = sparse_contract(at::zeros({2, 0, 2}, kLong),
                                       at::zeros({2, 0}, kDouble), {4}, x);
  EXPECT_EQ(y.sizes(), at::IntArrayRef({2, 4}));
  EXPECT_EQ(y.abs().sum().item<double>(), 0.0);
  // Empty batch.
  const at::Tensor y0 = sparse_contract(at::zeros({0, 5, 2}, kLong),
                                        at::zeros({0, 5}, kDouble), {4},
                                        at::zeros({0, 3}, kDouble));
  EXPECT_EQ(y0.sizes(), at::IntArrayRef({0, 4}));
}

TEST(SparseContract, GradientsMatchFiniteDifferences) {
  at::manual_seed(2);
  // Duplicates are likely with 30 entries over 4 x 3 positions.
  const at::Tensor indices = random_tuples(2, 30, {4, 3});
  const at::Tensor values = at::randn({2, 30}, kDouble);
  const at::Tensor x = at::randn({2, 3}, kDouble);
  auto f = [&](const std::vector<at::Tensor>& in) {
    return sparse_contract(indices, in[0], {4}, in[1]);
  };
  EXPECT_LT(testing::max_gradient_error(f, {values, x}, /*wrt=*/0), 1e-7);
  EXPECT_LT(testing::max_gradient_error(f, {values, x}, /*wrt=*/1), 1e-7);

  const at::Tensor indices5 = random_tuples(2, 25, {2, 3, 2, 2, 3});
  const at::Tensor values5 = at::randn({2, 25}, kDouble);
  const at::Tensor x5 = at::randn({2, 2, 2, 3}, kDouble);
  auto f5 = [&](const std::vector<at::Tensor>& in) {
    return sparse_contract(indices5, in[0], {2, 3}, in[1]);
  };
  EXPECT_LT(testing::max_gradient_error(f5, {values5, x5}, 0), 1e-7);
  EXPECT_LT(testing::max_gradient_error(f5, {values5, x5}, 1), 1e-7);
}

TEST(SparseContract, BackwardOpMatchesAutograd) {
  at::manual_seed(3);
  const at::Tensor indices = random_tuples(3, 20, {5, 6});
  const at::Tensor values = at::randn({3, 20}, kDouble).requires_grad_();
  const at::Tensor x = at::randn({3, 6}, kDouble).requires_grad_();
  const at::Tensor grad_y = at::randn({3, 5}, kDouble);
  sparse_contract(indices, values, {5}, x).backward(grad_y);
  auto grads = detail::_sparse_contract_backward(
      grad_y, indices, values.detach(), x.detach(), {5});
  EXPECT_TRUE(at::allclose(std::get<0>(grads), values.grad()));
  EXPECT_TRUE(at::allclose(std::get<1>(grads), x.grad()));
}

// Batch-1 indices and values: one matrix applied to every row of x. The
// result equals the same matrix copied to every row (the per-row loops, and
// the dense reference), the value gradient is the sum of the rows' gradients,
// and both gradients match finite differences.
TEST(SparseContract, OneMatrixForEveryRow) {
  at::manual_seed(6);
  for (int64_t batch : {1, 3, 37}) {
    const at::Tensor indices = random_tuples(1, 60, {3, 2, 4, 2});
    const at::Tensor values = at::randn({1, 60}, kDouble);
    const at::Tensor x = at::randn({batch, 4, 2}, kDouble);
    const at::Tensor rows_indices = indices.expand({batch, 60, 4}).contiguous();
    const at::Tensor rows_values = values.expand({batch, 60}).contiguous();
    const at::Tensor y = sparse_contract(indices, values, {3, 2}, x);
    EXPECT_TRUE(at::equal(y, sparse_contract(rows_indices, rows_values, {3, 2}, x)))
        << "batch " << batch;
    EXPECT_TRUE(at::allclose(y, dense_reference(rows_indices, rows_values, {3, 2}, x)))
        << "batch " << batch;

    const at::Tensor grad_y = at::randn({batch, 3, 2}, kDouble);
    const auto [gv, gx] = detail::_sparse_contract_backward(grad_y, indices, values, x, {3, 2});
    const auto [rv, rx] =
        detail::_sparse_contract_backward(grad_y, rows_indices, rows_values, x, {3, 2});
    EXPECT_EQ(gv.sizes(), at::IntArrayRef({1, 60}));
    EXPECT_TRUE(at::allclose(gv, rv.sum(0, /*keepdim=*/true), 1e-12, 1e-12)) << "batch " << batch;
    EXPECT_TRUE(at::equal(gx, rx)) << "batch " << batch;

    auto f = [&](const std::vector<at::Tensor>& in) {
      return sparse_contract(indices, in[0], {3, 2}, in[1]);
    };
    EXPECT_LT(testing::max_gradient_error(f, {values, x}, /*wrt=*/0), 1e-7);
    EXPECT_LT(testing::max_gradient_error(f, {values, x}, /*wrt=*/1), 1e-7);
  }
}

TEST(SparseContract, CudaEqualsCpu) {
  // The launch: the same bodies with atomicAdd, within rounding of the CPU's
  // ordered sums (duplicates likely: 40 entries over 5 x 6 positions).
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  at::manual_seed(5);
  const at::Tensor indices = random_tuples(3, 40, {5, 6});
  const at::Tensor values = at::randn({3, 40}, kDouble);
  const at::Tensor x = at::randn({3, 6}, kDouble);
  const at::Tensor grad_y = at::randn({3, 5}, kDouble);
  const at::Tensor y = sparse_contract(indices.cuda(), values.cuda(), {5}, x.cuda());
  EXPECT_TRUE(at::allclose(y.cpu(), sparse_contract(indices, values, {5}, x), 1e-12, 1e-12));
  const auto [gv, gx] = detail::_sparse_contract_backward(grad_y.cuda(), indices.cuda(),
                                                          values.cuda(), x.cuda(), {5});
  const auto [ev, ex] = detail::_sparse_contract_backward(grad_y, indices, values, x, {5});
  EXPECT_TRUE(at::allclose(gv.cpu(), ev, 1e-12, 1e-12));
  EXPECT_TRUE(at::allclose(gx.cpu(), ex, 1e-12, 1e-12));
  // One matrix for every row (the CUDA entry expands it, then sums).
  const at::Tensor one_indices = indices.slice(0, 0, 1), one_values = values.slice(0, 0, 1);
  EXPECT_TRUE(at::allclose(sparse_contract(one_indices.cuda(), one_values.cuda(), {5}, x.cuda()).cpu(),
                           sparse_contract(one_indices, one_values, {5}, x), 1e-12, 1e-12));
  const auto [gv1, gx1] = detail::_sparse_contract_backward(
      grad_y.cuda(), one_indices.cuda(), one_values.cuda(), x.cuda(), {5});
  const auto [ev1, ex1] =
      detail::_sparse_contract_backward(grad_y, one_indices, one_values, x, {5});
  EXPECT_TRUE(at::allclose(gv1.cpu(), ev1, 1e-12, 1e-12));
  EXPECT_TRUE(at::allclose(gx1.cpu(), ex1, 1e-12, 1e-12));
}

TEST(SparseContract, FloatMatchesDouble) {
  at::manual_seed(4);
  const at::Tensor indices = random_tuples(4, 100, {8, 8});
  const at::Tensor values = at::randn({4, 100}, kDouble);
  const at::Tensor x = at::randn({4, 8}, kDouble);
  const at::Tensor y64 = sparse_contract(indices, values, {8}, x);
  const at::Tensor y32 = sparse_contract(indices, values.to(at::kFloat), {8},
                                         x.to(at::kFloat));
  EXPECT_EQ(y32.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::allclose(y32.to(at::kDouble), y64, 1e-4, 1e-5));
}

TEST(SparseContract, BadInputNamesTheArgument) {
  const at::Tensor indices = at::zeros({2, 5, 2}, kLong);
  const at::Tensor values = at::ones({2, 5}, kDouble);
  const at::Tensor x = at::ones({2, 3}, kDouble);
  // Out-of-range and negative indices.
  at::Tensor bad = indices.clone();
  bad[1][2][1] = 3;
  EXPECT_ERROR_CONTAINS(sparse_contract(bad, values, {4}, x),
                        "indices[..., 1] must lie in [0, 3)");
  bad = indices.clone();
  bad[0][0][0] = -1;
  EXPECT_ERROR_CONTAINS(sparse_contract(bad, values, {4}, x),
                        "got values from -1");
  // Wrong dtypes.
  EXPECT_ERROR_CONTAINS(sparse_contract(indices.to(at::kInt), values, {4}, x),
                        "indices must have dtype int64");
  EXPECT_ERROR_CONTAINS(sparse_contract(indices, values.to(at::kLong), {4}, x),
                        "values must have dtype float or double");
  EXPECT_ERROR_CONTAINS(sparse_contract(indices, values, {4}, x.to(at::kFloat)),
                        "values and x must have the same dtype");
  // Mismatched shapes.
  EXPECT_ERROR_CONTAINS(sparse_contract(indices, values, {4, 2}, x),
                        "each index tuple must have");
  EXPECT_ERROR_CONTAINS(
      sparse_contract(indices, at::ones({2, 4}, kDouble), {4}, x),
      "same number of entries");
  EXPECT_ERROR_CONTAINS(
      sparse_contract(indices, values, {4}, at::ones({3, 3}, kDouble)),
      "must have x's batch size or 1");
  // Batch 1 is one matrix for every row, but indices and values must agree.
  EXPECT_ERROR_CONTAINS(sparse_contract(indices, values.slice(0, 0, 1), {4}, x),
                        "must have x's batch size or 1");
  EXPECT_ERROR_CONTAINS(sparse_contract(indices[0], values, {4}, x),
                        "indices must have 3 dimensions");
  EXPECT_ERROR_CONTAINS(sparse_contract(indices, values, {-4}, x),
                        "out_shape must be non-negative");
}

}  // namespace
}  // namespace indexgrad
