// Tests of sample_tuples: neighbours (known cases), local boxes inside the
// bounds, global range, reproducibility, bad input; the CUDA kernel's
// per-thread rule against the CPU op, and the CUDA op itself where a GPU is
// present (skipped otherwise).
#include "kernels/sample_tuples/sample_tuples.h"
#include "kernels/sample_tuples/sample_tuples_math.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <set>

#include "kernels/testing/expect_error.h"

namespace indexgrad {
namespace {

const auto kDouble = at::TensorOptions().dtype(at::kDouble);

TEST(SampleTuples, NeighboursFirstDimensionSlowest) {
  const at::Tensor means = at::tensor({1.5, 2.25}, kDouble).reshape({1, 1, 2});
  const at::Tensor t = sample_tuples(means, {4, 5}, /*num_global=*/0,
                                     /*num_local=*/0, /*region=*/{2, 2}, 0);
  ASSERT_EQ(t.sizes(), at::IntArrayRef({1, 1, 4, 2}));
  const at::Tensor expected =
      at::tensor({1, 2, 1, 3, 2, 2, 2, 3}, at::kLong).reshape({1, 1, 4, 2});
  EXPECT_TRUE(t.equal(expected)) << t;
}

// Means for the kernel-rule tests: ranks 1-3 with sides 7, 2 (narrower
// than the box) and 1000, one mean on the upper bound.
at::Tensor RuleTestMeans(int64_t rank, const std::vector<int64_t>& sizes) {
  at::manual_seed(rank);
  at::Tensor means = at::rand({3, 10, rank}, kDouble) *
                     (at::tensor(sizes, kDouble) - 1).view({1, 1, rank});
  means[0][0] = (at::tensor(sizes, kDouble) - 1);  // the upper bound
  return means;
}

std::vector<int64_t> RuleTestSizes(int64_t rank) {
  const std::vector<int64_t> all_sizes = {7, 2, 1000};
  return std::vector<int64_t>(all_sizes.begin(), all_sizes.begin() + rank);
}

TEST(SampleTuples, KernelEqualsTheCudaThreadRule) {
  // The CPU kernel evaluates sample_component's rules phase by phase; a CUDA
  // thread evaluates sample_element(i) for its output element i. Every
  // element must agree: ranks 1-3, boxes wider than a side, means on the
  // upper bound, float and double.
  for (int64_t rank = 1; rank <= 3; ++rank) {
    for (auto dtype : {at::kFloat, at::kDouble}) {
      const std::vector<int64_t> sizes = RuleTestSizes(rank);
      const std::vector<int64_t> region(rank, 5);  // wider than the side 2
      const at::Tensor means = RuleTestMeans(rank, sizes).to(dtype).contiguous();
      const int64_t seed = 11 + rank;
      const at::Tensor out = sample_tuples(means, sizes, 3, 4, region, seed);
      SampleLayout layout{};
      layout.rank = static_cast<int>(rank);
      layout.samples = out.size(2);
      layout.num_local = 4;
      layout.seed = seed;
      for (int64_t d = 0; d < rank; ++d) {
        layout.sizes[d] = sizes[d];
        layout.region[d] = region[d];
      }
      const int64_t* o = out.data_ptr<int64_t>();
      int64_t mismatches = 0;
      for (int64_t i = 0; i < out.numel(); ++i) {
        const int64_t want = dtype == at::kFloat
                                 ? sample_element(layout, means.data_ptr<float>(), i)
                                 : sample_element(layout, means.data_ptr<double>(), i);
        mismatches += o[i] != want;
      }
      EXPECT_EQ(mismatches, 0) << "rank " << rank << " dtype " << dtype;
    }
  }
}

TEST(SampleTuples, CudaEqualsCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (int64_t rank = 1; rank <= 3; ++rank) {
    for (auto dtype : {at::kFloat, at::kDouble}) {
      const std::vector<int64_t> sizes = RuleTestSizes(rank);
      const std::vector<int64_t> region(rank, 5);
      const at::Tensor means = RuleTestMeans(rank, sizes).to(dtype);
      const at::Tensor cpu = sample_tuples(means, sizes, 3, 4, region, 5);
      const at::Tensor gpu = sample_tuples(means.cuda(), sizes, 3, 4, region, 5);
      EXPECT_TRUE(gpu.is_cuda());
      EXPECT_TRUE(gpu.cpu().equal(cpu)) << "rank " << rank << " dtype " << dtype;
    }
  }
  // Empty input and the checks on the device.
  EXPECT_EQ(sample_tuples(at::zeros({0, 4, 2}, kDouble).cuda(), {3, 3}, 1, 1, {2, 2}, 0)
                .sizes(),
            at::IntArrayRef({0, 4, 6, 2}));
  EXPECT_ERROR_CONTAINS(
      sample_tuples(at::full({1, 1, 1}, 9.0, kDouble).cuda(), {4}, 0, 0, {1}, 0),
      "means[..., 0] must lie in [0, 3] (sizes [4]), got values from 9 to 9");
}

TEST(SampleTuples, IntegerMeanAndUpperBound) {
  // floor == ceil at an integer; the last index stays in range.
  const at::Tensor means = at::tensor({3.0, 0.0}, kDouble).reshape({1, 1, 2});
  const at::Tensor t = sample_tuples(means, {4, 3}, 0, 0, {1, 1}, 0);
  EXPECT_TRUE(t.select(3, 0).eq(3).all().item<bool>());
  EXPECT_TRUE(t.select(3, 1).eq(0).all().item<bool>());
}

TEST(SampleTuples, LocalSamplesStayInShiftedBox) {
  // Mean near the lower bound: round(0.4) = 0, box of 4 shifted to [0, 4).
  // Mean near the upper bound of 10: round(8.7) = 9, box shifted to [6, 10).
  const at::Tensor means =
      at::tensor({0.4, 8.7}, kDouble).reshape({1, 2, 1});
  const at::Tensor t = sample_tuples(means, {10}, 0, /*num_local=*/500, {4}, 7);
  const at::Tensor local = t.slice(2, 2);  // [1, 2, 500, 1]
  EXPECT_EQ(local[0][0].min().item<int64_t>(), 0);
  EXPECT_EQ(local[0][0].max().item<int64_t>(), 3);
  EXPECT_EQ(local[0][1].min().item<int64_t>(), 6);
  EXPECT_EQ(local[0][1].max().item<int64_t>(), 9);
  // In the middle: round(4.6) = 5. An even width cannot be centred: 4 ->
  // [3, 7), two cells below round(mean) and one above (this bias
  // drifts the identity's tuples upwards, docs/identity.md); an odd width is centred: 5 ->
  // [3, 8), two on each side.
  const at::Tensor mid = sample_tuples(at::full({1, 1, 1}, 4.6, kDouble), {10},
                                       0, 500, {4}, 7)
                             .slice(2, 2);
  EXPECT_EQ(mid.min().item<int64_t>(), 3);
  EXPECT_EQ(mid.max().item<int64_t>(), 6);
  const at::Tensor odd = sample_tuples(at::full({1, 1, 1}, 4.6, kDouble), {10},
                                       0, 500, {5}, 7)
                             .slice(2, 2);
  EXPECT_EQ(odd.min().item<int64_t>(), 3);
  EXPECT_EQ(odd.max().item<int64_t>(), 7);
}

TEST(SampleTuples, GlobalSamplesCoverTheRange) {
  const at::Tensor means = at::zeros({2, 3, 2}, kDouble);
  const at::Tensor t = sample_tuples(means, {5, 7}, /*num_global=*/400, 0,
                                     {1, 1}, 3)
                           .slice(2, 4);
  for (int d = 0; d < 2; ++d) {
    const at::Tensor c = t.select(3, d);
    EXPECT_EQ(c.min().item<int64_t>(), 0);
    EXPECT_EQ(c.max().item<int64_t>(), d == 0 ? 4 : 6);
  }
  // Roughly uniform: each of the 5 values of dim 0 gets 20% +- 4%.
  const at::Tensor counts = at::bincount(t.select(3, 0).reshape(-1));
  const double n = t.select(3, 0).numel();
  for (int v = 0; v < 5; ++v) {
    EXPECT_NEAR(counts[v].item<double>() / n, 0.2, 0.04) << "value " << v;
  }
}

TEST(SampleTuples, ReproducibleBySeed) {
  const at::Tensor means = at::rand({3, 4, 3}, kDouble) * 9;
  auto draw = [&](int64_t seed) {
    return sample_tuples(means, {10, 10, 10}, 3, 3, {3, 3, 3}, seed);
  };
  EXPECT_TRUE(draw(5).equal(draw(5)));
  EXPECT_FALSE(draw(5).equal(draw(6)));
  // Float means give the same samples as double ones.
  EXPECT_TRUE(sample_tuples(means.to(at::kFloat), {10, 10, 10}, 3, 3,
                            {3, 3, 3}, 5)
                  .equal(draw(5)));
}

TEST(SampleTuples, BadInputNamesTheArgument) {
  const at::Tensor means = at::ones({1, 2, 2}, kDouble);
  EXPECT_ERROR_CONTAINS(sample_tuples(means * 5, {4, 4}, 1, 1, {2, 2}, 0),
                        "means[..., 0] must lie in [0, 3]");
  EXPECT_ERROR_CONTAINS(sample_tuples(-means, {4, 4}, 1, 1, {2, 2}, 0),
                        "got values from -1");
  at::Tensor nan = means.clone();
  nan[0][1][1] = NAN;
  EXPECT_ERROR_CONTAINS(sample_tuples(nan, {4, 4}, 1, 1, {2, 2}, 0),
                        "means contain NaN");
  EXPECT_ERROR_CONTAINS(sample_tuples(means, {4}, 1, 1, {2, 2}, 0),
                        "sizes must have one entry per tuple component");
  EXPECT_ERROR_CONTAINS(sample_tuples(means, {4, -4}, 1, 1, {2, 2}, 0),
                        "sizes must be positive");
  EXPECT_ERROR_CONTAINS(sample_tuples(means, {4, 4}, -1, 1, {2, 2}, 0),
                        "num_global must be >= 0, got -1");
  EXPECT_ERROR_CONTAINS(sample_tuples(means, {4, 4}, 1, 1, {2, 0}, 0),
                        "region must be positive");
  EXPECT_ERROR_CONTAINS(
      sample_tuples(means.to(at::kLong), {4, 4}, 1, 1, {2, 2}, 0),
      "means must have dtype float or double");
  EXPECT_ERROR_CONTAINS(sample_tuples(means[0], {4, 4}, 1, 1, {2, 2}, 0),
                        "means must have 3 dimensions");
}

}  // namespace
}  // namespace indexgrad
