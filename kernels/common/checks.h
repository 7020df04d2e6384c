// Argument checks shared by the ops' host entries. Every message names the
// op, the argument and the value seen, e.g.
//   "sparse_contract: values must have dtype float or double, got Long".
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace indexgrad {

// `arg` has exactly `dim` dimensions.
void check_dim(const char* op, const char* arg, const at::Tensor& t,
               int64_t dim);

// `arg` is float32 or float64.
void check_floating(const char* op, const char* arg, const at::Tensor& t);

// `arg` is int64.
void check_long(const char* op, const char* arg, const at::Tensor& t);

// `a` and `b` are on the same device.
void check_same_device(const char* op, const char* arg_a, const at::Tensor& a,
                       const char* arg_b, const at::Tensor& b);

// `a` and `b` have the same dtype.
void check_same_dtype(const char* op, const char* arg_a, const at::Tensor& a,
                      const char* arg_b, const at::Tensor& b);

// `tuples` [..., rank] holds integer index tuples; every component d lies in
// [0, sizes[d]). Works on any device (one small reduction per call).
void check_tuples_in_range(const char* op, const char* arg,
                           const at::Tensor& tuples, at::IntArrayRef sizes);

// "[2, 3, 4]"
std::string shape_string(at::IntArrayRef shape);

}  // namespace indexgrad
