#include "kernels/common/checks.h"

#include <c10/util/Exception.h>

#include <sstream>

namespace indexgrad {

void check_dim(const char* op, const char* arg, const at::Tensor& t,
               int64_t dim) {
  TORCH_CHECK(t.dim() == dim, op, ": ", arg, " must have ", dim,
              " dimensions, got shape ", shape_string(t.sizes()));
}

void check_floating(const char* op, const char* arg, const at::Tensor& t) {
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble,
              op, ": ", arg, " must have dtype float or double, got ",
              t.scalar_type());
}

void check_long(const char* op, const char* arg, const at::Tensor& t) {
  TORCH_CHECK(t.scalar_type() == at::kLong, op, ": ", arg,
              " must have dtype int64 (Long), got ", t.scalar_type());
}

void check_same_device(const char* op, const char* arg_a, const at::Tensor& a,
                       const char* arg_b, const at::Tensor& b) {
  TORCH_CHECK(a.device() == b.device(), op, ": ", arg_a, " and ", arg_b,
              " must be on the same device, got ", a.device(), " and ",
              b.device());
}

void check_same_dtype(const char* op, const char* arg_a, const at::Tensor& a,
                      const char* arg_b, const at::Tensor& b) {
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), op, ": ", arg_a, " and ",
              arg_b, " must have the same dtype, got ", a.scalar_type(),
              " and ", b.scalar_type());
}

void check_tuples_in_range(const char* op, const char* arg,
                           const at::Tensor& tuples, at::IntArrayRef sizes) {
  const int64_t rank = static_cast<int64_t>(sizes.size());
  TORCH_CHECK(tuples.dim() >= 1 && tuples.size(-1) == rank, op, ": ", arg,
              " must end in a dimension of size ", rank, " (the rank), got ",
              shape_string(tuples.sizes()));
  if (tuples.numel() == 0) return;
  const at::Tensor flat = tuples.reshape({-1, rank});
  // [rank] each; one device->host copy.
  const at::Tensor lo = std::get<0>(flat.min(0)).cpu();
  const at::Tensor hi = std::get<0>(flat.max(0)).cpu();
  const int64_t* lo_p = lo.data_ptr<int64_t>();
  const int64_t* hi_p = hi.data_ptr<int64_t>();
  for (int64_t d = 0; d < rank; ++d) {
    TORCH_CHECK(lo_p[d] >= 0 && hi_p[d] < sizes[d], op, ": ", arg,
                "[..., ", d, "] must lie in [0, ", sizes[d],
                ") (index space ", shape_string(sizes), "), got values from ",
                lo_p[d], " to ", hi_p[d]);
  }
}

std::string shape_string(at::IntArrayRef shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << "]";
  return os.str();
}

}  // namespace indexgrad
