#include "kernels/testing/gradcheck.h"

#include <torch/autograd.h>

#include <algorithm>
#include <cmath>

namespace indexgrad {
namespace testing {

double max_gradient_error(const TensorFn& f, std::vector<at::Tensor> inputs,
                          size_t wrt, double eps) {
  TORCH_CHECK(wrt < inputs.size(), "max_gradient_error: wrt out of range");
  TORCH_CHECK(inputs[wrt].scalar_type() == at::kDouble,
              "max_gradient_error: check gradients in double precision");
  for (auto& t : inputs) t = t.detach().clone();
  inputs[wrt].set_requires_grad(true);

  at::Tensor out = f(inputs);
  const at::Tensor w =
      at::rand(out.sizes(), at::TensorOptions().dtype(at::kDouble)) - 0.5;
  at::Tensor loss = (out * w.to(out.scalar_type())).sum();
  const at::Tensor analytic =
      torch::autograd::grad({loss}, {inputs[wrt]}, {}, false, false, true)[0];

  at::Tensor x = inputs[wrt].detach();
  at::Tensor numeric = at::zeros_like(x);
  auto loss_at = [&](const at::Tensor& value) {
    std::vector<at::Tensor> in = inputs;
    in[wrt] = value;
    at::NoGradGuard no_grad;
    return (f(in) * w.to(out.scalar_type())).sum().item<double>();
  };
  at::Tensor flat = x.reshape(-1);
  at::Tensor numeric_flat = numeric.view(-1);
  for (int64_t i = 0; i < flat.numel(); ++i) {
    at::Tensor plus = flat.clone();
    at::Tensor minus = flat.clone();
    plus[i] += eps;
    minus[i] -= eps;
    numeric_flat[i] = (loss_at(plus.view(x.sizes())) -
                       loss_at(minus.view(x.sizes()))) /
                      (2 * eps);
  }
  const at::Tensor a = analytic.defined() ? analytic : at::zeros_like(x);
  const at::Tensor err = (a - numeric).abs() / a.abs().clamp_min(1.0);
  return err.numel() == 0 ? 0.0 : err.max().item<double>();
}

}  // namespace testing
}  // namespace indexgrad
