#include "sparse_hyper/identity_task.h"

#include <gtest/gtest.h>

#include "kernels/testing/expect_error.h"

namespace indexgrad {
namespace sparse_hyper {
namespace {

at::Tensor tuples_of(std::vector<int64_t> flat) {
  return at::tensor(flat, at::kLong).reshape({-1, 2});
}

TEST(EvaluateIdentity, ExactIdentity) {
  const IdentityEval e = EvaluateIdentity(tuples_of({0, 0, 1, 1, 2, 2}),
                                          at::ones({3}), 3);
  EXPECT_TRUE(e.exact);
  EXPECT_DOUBLE_EQ(e.expected_mse, 0.0);
  EXPECT_DOUBLE_EQ(e.on_diagonal, 1.0);
}

TEST(EvaluateIdentity, MatchesDenseFormulaAndMonteCarlo) {
  // Duplicate (1, 1) twice (values add to 0.5 + 0.7), an off-diagonal (0, 2),
  // diagonal (2, 2) missing.
  const at::Tensor t = tuples_of({0, 0, 1, 1, 1, 1, 0, 2});
  const at::Tensor v = at::tensor({1.0, 0.5, 0.7, 0.3}, at::kDouble);
  const IdentityEval e = EvaluateIdentity(t, v, 3);
  at::Tensor w = at::zeros({3, 3}, at::kDouble);
  w[0][0] = 1.0;
  w[1][1] = 1.2;
  w[0][2] = 0.3;
  const double dense = (w - at::eye(3, at::kDouble)).pow(2).sum().item<double>() / 3;
  EXPECT_NEAR(e.expected_mse, dense, 1e-12);
  at::manual_seed(0);
  const at::Tensor x = at::randn({200000, 3}, at::kDouble);
  const double mc = (at::matmul(x, w.t()) - x).pow(2).mean().item<double>();
  EXPECT_NEAR(e.expected_mse, mc, 0.01);
  EXPECT_FALSE(e.exact);
  EXPECT_DOUBLE_EQ(e.on_diagonal, 0.75);
}

TEST(EvaluateIdentity, DiagonalButNotCoveringIsNotExact) {
  const IdentityEval e = EvaluateIdentity(tuples_of({0, 0, 0, 0, 2, 2}),
                                          at::ones({3}), 3);
  EXPECT_DOUBLE_EQ(e.on_diagonal, 1.0);
  EXPECT_FALSE(e.exact);
}

TEST(EvaluateIdentity, BadInput) {
  EXPECT_ERROR_CONTAINS(EvaluateIdentity(tuples_of({0, 3}), at::ones({1}), 3),
                        "must lie in [0, 3)");
  EXPECT_ERROR_CONTAINS(EvaluateIdentity(tuples_of({0, 1}), at::ones({2}), 3),
                        "values must be [k] = [1]");
}

}  // namespace
}  // namespace sparse_hyper
}  // namespace indexgrad
