// The identity task of Bloem et al. 2018, section 3.1: learn W = I (n x n)
// from x ~ N(0, I) with the loss MSE(W x, x). Evaluation of a learned W given
// by rounded index tuples and values.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace indexgrad {
namespace sparse_hyper {

struct IdentityEval {
  // E_x[mean_i ((W x)_i - x_i)^2] for x ~ N(0, I): exactly ||W - I||_F^2 / n
  // (the paper estimates it on 10,000 fresh samples; this is its limit).
  double expected_mse = 0;
  // Fraction of tuples on the diagonal.
  double on_diagonal = 0;
  // Every tuple on the diagonal and every diagonal cell covered: the rounded
  // structure is exactly I's (the convergence criterion).
  bool exact = false;
};

// tuples [k, 2] int64 (row, column) in [0, n); values [k]. Duplicate tuples
// add up. Linear in k (no dense n x n matrix).
IdentityEval EvaluateIdentity(const at::Tensor& tuples, const at::Tensor& values,
                              int64_t n);

}  // namespace sparse_hyper
}  // namespace indexgrad
