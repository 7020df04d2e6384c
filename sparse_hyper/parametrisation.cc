#include "sparse_hyper/parametrisation.h"

#include "kernels/common/checks.h"

namespace indexgrad {
namespace sparse_hyper {

std::vector<int64_t> IndexSpace(const char* op,
                                const std::vector<int64_t>& out_shape,
                                const std::vector<int64_t>& in_shape) {
  TORCH_CHECK(!out_shape.empty() && !in_shape.empty(), op,
              ": out_shape and in_shape need at least one dimension each, got ",
              shape_string(out_shape), " and ", shape_string(in_shape));
  std::vector<int64_t> sizes = out_shape;
  sizes.insert(sizes.end(), in_shape.begin(), in_shape.end());
  for (int64_t s : sizes) {
    TORCH_CHECK(s >= 1, op, ": out_shape and in_shape must be positive, got ",
                shape_string(sizes));
  }
  return sizes;
}

void CheckLayerInput(const char* op, const at::Tensor& x,
                     const std::vector<int64_t>& in_shape) {
  const int64_t in_rank = in_shape.size();
  TORCH_CHECK(x.dim() == in_rank + 1 &&
                  x.sizes().slice(1) == at::IntArrayRef(in_shape),
              op, ": x must be [batch, ", shape_string(in_shape).substr(1),
              ", got ", shape_string(x.sizes()));
}

at::Tensor MeansFromRaw(const at::Tensor& raw,
                        const at::Tensor& size_minus_one) {
  return at::sigmoid(raw) * size_minus_one;
}

at::Tensor VariancesFromRaw(const at::Tensor& raw, const at::Tensor& size,
                            double sigma_scale, double min_sigma) {
  return at::softplus(raw + 2).unsqueeze(-1) * size * sigma_scale + min_sigma;
}

at::Tensor RoundHalfUp(const at::Tensor& means) {
  return at::floor(means.detach() + 0.5).to(at::kLong);
}

at::Tensor UniformRawMeans(int64_t k, int64_t r) {
  const at::Tensor u = at::rand({k, r}) * 0.96 + 0.02;
  return at::log(u / (1 - u));
}

}  // namespace sparse_hyper
}  // namespace indexgrad
