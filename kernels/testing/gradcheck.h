// Finite-difference gradient checks for ops, in double precision.
//
//   auto f = [&](const std::vector<at::Tensor>& in) { return op(in[0], in[1]); };
//   EXPECT_LT(indexgrad::testing::max_gradient_error(f, {a, b}, /*wrt=*/0), 1e-6);
//
// The scalar loss is sum(f(inputs) * w) for a fixed random w, so every output
// element's gradient is checked. The error is the largest absolute difference
// between the autograd gradient and central differences, relative to
// max(1, |gradient|).
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <vector>

namespace indexgrad {
namespace testing {

using TensorFn = std::function<at::Tensor(const std::vector<at::Tensor>&)>;

double max_gradient_error(const TensorFn& f, std::vector<at::Tensor> inputs,
                          size_t wrt, double eps = 1e-6);

}  // namespace testing
}  // namespace indexgrad
