#include "sparse_hyper/identity_task.h"

#include <gtest/gtest.h>
#include <torch/optim/adam.h>

#include "kernels/testing/expect_error.h"
#include "sparse_hyper/sparse_layer.h"

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

// Steps until the rounded means are exactly I, evaluated every 50 steps as
// the identity experiment does (-1: not within max_steps). The experiment's
// default settings: batch 64, 4 global + 4 local samples, region 4, values
// fixed, Adam lr 0.01.
int64_t StepsToIdentity(int64_t n, int64_t seed, int64_t max_steps) {
  at::manual_seed(seed);
  SparseLayer layer(SparseLayerOptions({n}, {n}, n)
                        .num_global(4)
                        .num_local(4)
                        .region({4, 4})
                        .learn_values(false)
                        .seed(seed));
  torch::optim::Adam adam(layer->parameters(), torch::optim::AdamOptions(0.01));
  for (int64_t step = 1; step <= max_steps; ++step) {
    const at::Tensor x = at::randn({64, n});
    const at::Tensor loss = (layer->forward(x) - x).pow(2).mean();
    adam.zero_grad();
    loss.backward();
    adam.step();
    if (step % 50 == 0 &&
        EvaluateIdentity(layer->rounded_tuples(), layer->values, n).exact) {
      return step;
    }
  }
  return -1;
}

TEST(IdentityTraining, SmallSizesConvergeInNoMoreStepsThanBefore) {
  // The default preset's runs (the experiment seeds run r of size n with
  // n * 131 + r) against the steps they took before this kernel and these
  // settings (n = 8 in 500 and 750, n = 16 in 2,000 and 2,250):
  // the faster kernel (float arithmetic, another order of sums) and the
  // learning rate must not cost convergence.
  for (int64_t repeat : {0, 1}) {
    const int64_t steps8 = StepsToIdentity(8, 8 * 131 + repeat, 500);
    EXPECT_GT(steps8, 0) << "n = 8 did not converge in 500 steps, run " << repeat;
    const int64_t steps16 = StepsToIdentity(16, 16 * 131 + repeat, 2000);
    EXPECT_GT(steps16, 0) << "n = 16 did not converge in 2000 steps, run " << repeat;
    std::printf("run %lld: n = 8 in %lld steps, n = 16 in %lld\n",
                static_cast<long long>(repeat), static_cast<long long>(steps8),
                static_cast<long long>(steps16));
  }
}

}  // namespace
}  // namespace sparse_hyper
}  // namespace indexgrad
