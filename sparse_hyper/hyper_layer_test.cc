// Tests of HyperLayer: gradients through the source network against finite
// differences (double, sampling fixed), templates (fixed coordinates kept,
// no mass across them), per-input parameters, evaluation mode, bad input.
#include "sparse_hyper/hyper_layer.h"

#include <gtest/gtest.h>

#include "kernels/testing/expect_error.h"

namespace indexgrad {
namespace sparse_hyper {
namespace {

const auto kDouble = at::TensorOptions().dtype(at::kDouble);

TEST(HyperLayer, GradientsThroughSourceNetworkMatchFiniteDifferences) {
  at::manual_seed(0);
  HyperLayer layer(HyperLayerOptions({4}, {5}, 3).hidden(6).sigma_scale(0.3));
  layer->to(at::kDouble);
  const at::Tensor x = at::randn({2, 5}, kDouble);
  const at::Tensor w = at::randn({2, 4}, kDouble);
  auto loss = [&] {
    layer->step.zero_();
    return (layer->forward(x) * w).sum();
  };
  layer->zero_grad();
  loss().backward();
  int checked = 0;
  for (const at::Tensor& p : layer->parameters()) {
    const at::Tensor analytic = p.grad().clone();
    at::Tensor numeric = at::zeros_like(p);
    for (int64_t i = 0; i < p.numel(); ++i) {
      at::NoGradGuard g;
      const double saved = p.view(-1)[i].item<double>();
      p.view(-1)[i] = saved + 1e-6;
      const double plus = loss().item<double>();
      p.view(-1)[i] = saved - 1e-6;
      const double minus = loss().item<double>();
      p.view(-1)[i] = saved;
      numeric.view(-1)[i] = (plus - minus) / 2e-6;
    }
    EXPECT_TRUE(at::allclose(analytic, numeric, 1e-5, 1e-7))
        << analytic << numeric;
    ++checked;
  }
  EXPECT_EQ(checked, 4);  // two Linear layers, weight + bias each
}

TEST(HyperLayer, TemplateKeepsFixedCoordinates) {
  // Output dimension fixed: tuple i writes only to output row i; with x = 1
  // every row receives exactly its tuple's value (proportions sum to 1 over
  // the tuple's own row).
  at::manual_seed(1);
  const int64_t k = 3;
  at::Tensor tmpl = at::zeros({k, 2}, at::kLong);
  tmpl.select(1, 0).copy_(at::arange(k, at::kLong));
  HyperLayer layer(HyperLayerOptions({k}, {7}, k)
                       .fixed_dims({0})
                       .template_tuples(tmpl)
                       .num_global(3)
                       .num_local(3)
                       .chunk_size(0));
  layer->to(at::kDouble);
  const at::Tensor x = at::ones({4, 7}, kDouble);
  const at::Tensor y = layer->forward(x);
  const auto p = layer->parameters_for(x);
  EXPECT_TRUE(at::allclose(y, p.values, 1e-6, 1e-9)) << y << p.values;
  EXPECT_TRUE(p.means.select(2, 0).equal(
      at::arange(k, kDouble).unsqueeze(0).expand({4, k})));
}

TEST(HyperLayer, EachInputGetsItsOwnTuples) {
  at::manual_seed(2);
  HyperLayer layer(HyperLayerOptions({8}, {8}, 4));
  const auto p = layer->parameters_for(at::randn({2, 8}));
  EXPECT_FALSE(at::allclose(p.means[0], p.means[1]));
  layer->eval();
  const at::Tensor x = at::randn({3, 8});
  EXPECT_TRUE(at::allclose(layer->forward(x), layer->forward(x)));
}

TEST(HyperLayer, BadInputNamesTheArgument) {
  EXPECT_ERROR_CONTAINS(HyperLayer(HyperLayerOptions({4}, {4}, 2).fixed_dims({0})),
                        "template_tuples must be [k, r] = [2, 2]");
  EXPECT_ERROR_CONTAINS(HyperLayer(HyperLayerOptions({4}, {4}, 2).fixed_dims({2})),
                        "fixed_dims entries must be in [0, 2), got 2");
  EXPECT_ERROR_CONTAINS(
      HyperLayer(HyperLayerOptions({4}, {4}, 2)
                     .fixed_dims({0})
                     .template_tuples(at::full({2, 2}, 4, at::kLong))),
      "must lie in [0, 4)");
  HyperLayer layer(HyperLayerOptions({4}, {5}, 2));
  EXPECT_ERROR_CONTAINS(layer->forward(at::randn({2, 4})),
                        "x must be [batch, 5], got [2, 4]");
}

}  // namespace
}  // namespace sparse_hyper
}  // namespace indexgrad
