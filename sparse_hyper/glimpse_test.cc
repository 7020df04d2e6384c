// Glimpses: exact crops when variances are tiny and positions integer;
// evaluation against a loop over the neighbours; the same numbers as the
// generic templated 6-tensor product; finite-difference
// gradients; gradients reaching the source network; clear errors.
#include "sparse_hyper/glimpse.h"

#include <gtest/gtest.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>

#include <cmath>
#include <set>
#include <utility>

#include "kernels/testing/expect_error.h"
#include "kernels/testing/gradcheck.h"
#include "sparse_hyper/attention.h"
#include "sparse_hyper/parametrisation.h"
#include "sparse_hyper/sampled_sparse.h"

namespace indexgrad {
namespace sparse_hyper {
namespace {

// raw value whose sigmoid(raw) * (size - 1) is `pixel`.
double RawFor(double pixel, int64_t size) {
  const double p = pixel / double(size - 1);
  return std::log(p / (1 - p));
}

TEST(GlimpseLayer, TinyVariancesAndIntegerPositionsCropExactly) {
  at::manual_seed(0);
  const int64_t h = 20, w = 24;
  const at::Tensor image = at::rand({2, 3, h, w}, at::kDouble);
  // Glimpse 0: rows 4..7, columns 10..13; glimpse 1: rows 15..12 (flipped),
  // columns 2..5.
  const at::Tensor raw = at::tensor({RawFor(4, h), RawFor(10, w), RawFor(7, h), RawFor(13, w),
                                     RawFor(15, h), RawFor(2, w), RawFor(12, h), RawFor(5, w)},
                                    at::kDouble)
                             .view({1, 2, 4})
                             .repeat({2, 1, 1});
  GlimpseLayer layer(GlimpseOptions().glimpses(2).size(4).region({3, 3}).variance_scale(1e-9).min_variance(1e-6));
  layer->to(at::kDouble);
  {
    at::NoGradGuard no_grad;
    layer->value.copy_(at::tensor({2.0, -0.5}));
  }
  for (bool training : {true, false}) {
    layer->train(training);
    const at::Tensor out = layer->forward(image, raw);
    ASSERT_EQ(out.sizes(), at::IntArrayRef({2, 2, 3, 4, 4}));
    const at::Tensor crop0 = image.slice(2, 4, 8).slice(3, 10, 14) * 2.0;
    const at::Tensor crop1 = image.slice(2, 12, 16).flip({2}).slice(3, 2, 6) * -0.5;
    EXPECT_LT((out.select(1, 0) - crop0).abs().max().item<double>(), 1e-12) << training;
    EXPECT_LT((out.select(1, 1) - crop1).abs().max().item<double>(), 1e-12) << training;
  }
}

// Evaluation mode reads what training sees. With no random samples every
// draw is the 4 floor/ceil neighbours of each position, so evaluation (the
// mean of 3 draws) and training both equal a loop over the neighbours with
// normalised Gaussian weights; eval_samples 0 reads the rounded position.
TEST(GlimpseLayer, EvaluationReadsWhatTrainingSees) {
  at::manual_seed(4);
  const int64_t h = 12, w = 14, k = 3;
  const at::Tensor image = at::rand({2, 2, h, w}, at::kDouble);
  const at::Tensor raw = at::randn({2, 1, 4}, at::kDouble);
  GlimpseLayer layer(GlimpseOptions().size(k).num_global(0).num_local(0).region({3, 3})
                         .tolerance(0).eval_samples(3));
  layer->to(at::kDouble);
  {
    at::NoGradGuard no_grad;
    layer->value.fill_(1.5);
    layer->raw_variance.fill_(-0.7);
  }
  // variance = softplus(raw + 2) * (h, w) * 0.1 + 0.1 (GlimpseOptions).
  const double soft = std::log1p(std::exp(-0.7 + 2));
  const double var_y = soft * h * 0.1 + 0.1, var_x = soft * w * 0.1 + 0.1;
  const at::Tensor pos = GlimpsePositions(raw, k, h, w);  // [2, 9, 2]
  at::Tensor blended = at::zeros({2, 1, 2, k, k}, at::kDouble);
  at::Tensor rounded = at::zeros({2, 1, 2, k, k}, at::kDouble);
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t i = 0; i < k * k; ++i) {
      const double y = pos[b][i][0].item<double>(), x = pos[b][i][1].item<double>();
      std::set<std::pair<int64_t, int64_t>> corners;
      for (double cy : {std::floor(y), std::ceil(y)}) {
        for (double cx : {std::floor(x), std::ceil(x)}) corners.insert({int64_t(cy), int64_t(cx)});
      }
      for (int64_t c = 0; c < 2; ++c) {
        double num = 0, den = 0;
        for (const auto& [cy, cx] : corners) {
          const double p = std::exp(-0.5 * ((cy - y) * (cy - y) / var_y + (cx - x) * (cx - x) / var_x));
          num += p * image[b][c][cy][cx].item<double>();
          den += p;
        }
        blended[b][0][c][i / k][i % k] = 1.5 * num / den;
        rounded[b][0][c][i / k][i % k] =
            1.5 * image[b][c][int64_t(std::floor(y + 0.5))][int64_t(std::floor(x + 0.5))].item<double>();
      }
    }
  }
  layer->train();
  EXPECT_LT((layer->forward(image, raw) - blended).abs().max().item<double>(), 1e-12);
  layer->eval();
  EXPECT_LT((layer->forward(image, raw) - blended).abs().max().item<double>(), 1e-12);
  layer->options.eval_samples(0);
  EXPECT_LT((layer->forward(image, raw) - rounded).abs().max().item<double>(), 1e-12);
  EXPECT_GT((blended - rounded).abs().max().item<double>(), 1e-3);  // the test can tell
}

// With random samples: evaluations repeat exactly, leave the training
// seeds alone, and average their draws.
TEST(GlimpseLayer, EvaluationIsSeededApartFromTraining) {
  at::manual_seed(5);
  const at::Tensor image = at::rand({2, 1, 16, 16}, at::kDouble);
  const at::Tensor raw = at::randn({2, 2, 4}, at::kDouble);
  auto make = [](int64_t eval_samples) {
    GlimpseLayer g(GlimpseOptions().glimpses(2).size(4).num_global(3).num_local(5)
                       .region({4, 4}).eval_samples(eval_samples));
    g->to(at::kDouble);
    return g;
  };
  GlimpseLayer a = make(1), b = make(1), mean4 = make(4);
  a->eval();
  const at::Tensor first = a->forward(image, raw);
  EXPECT_TRUE(at::equal(first, a->forward(image, raw)));
  EXPECT_EQ(a->step.item<int64_t>(), 0);
  // Training after an evaluation draws what it draws without one.
  a->train();
  b->train();
  EXPECT_TRUE(at::equal(a->forward(image, raw), b->forward(image, raw)));
  EXPECT_FALSE(at::equal(a->forward(image, raw), first));  // training's own draws
  // The mean of 4 draws is another glimpse, as repeatable.
  mean4->eval();
  const at::Tensor four = mean4->forward(image, raw);
  EXPECT_GT((four - first).abs().max().item<double>(), 1e-6);
  EXPECT_TRUE(at::equal(four, mean4->forward(image, raw)));
}

// The templated sparse layer of the paper, built with the generic product:
// W of shape (c, k, k, c, h, w), tuple (c, i, j, c, y_ij, x_ij), dimensions
// 0..3 fixed. With no random samples both draw the same points.
TEST(SampledGather, EqualsTheTemplatedSixTensorProduct) {
  at::manual_seed(1);
  const int64_t batch = 2, c = 2, k = 3, h = 9, w = 11, K = k * k;
  const at::Tensor image = at::rand({batch, c, h, w}, at::kDouble);
  const at::Tensor pos = at::rand({batch, K, 2}, at::kDouble) * at::tensor({h - 1.0, w - 1.0}, at::kDouble);
  const at::Tensor var = at::rand({batch, K, 2}, at::kDouble) * 2 + 0.3;
  const at::Tensor val = at::randn({batch, K}, at::kDouble);
  GlimpseOptions o;
  o.num_global(0).num_local(0).tolerance(0);
  const at::Tensor ours = SampledGather(image, pos, var, val, o, /*seed=*/5);  // [B, c, K]

  // Generic: K * c tuples of rank 6.
  std::vector<at::Tensor> means, vars, vals;
  for (int64_t ch = 0; ch < c; ++ch) {
    const at::Tensor idx = at::arange(K, at::kDouble);
    means.push_back(at::stack({at::full({batch, K}, double(ch), at::kDouble),
                               (idx.div(k, "floor")).expand({batch, K}),
                               idx.remainder(k).expand({batch, K}),
                               at::full({batch, K}, double(ch), at::kDouble),
                               pos.select(2, 0), pos.select(2, 1)},
                              2));
    vars.push_back(at::cat({at::ones({batch, K, 4}, at::kDouble), var}, 2));
    vals.push_back(val);
  }
  SamplingOptions s;
  s.num_global = 0;
  s.num_local = 0;
  s.region = {1, 1, 1, 1, 1, 1};
  s.tolerance = 0;
  const at::Tensor generic = SampledSparseProduct(
      image, at::cat(means, 1), at::cat(vars, 1), at::cat(vals, 1), {c, k, k},
      {c, k, k, c, h, w}, s, {true, true, true, true, false, false}, 5);
  EXPECT_LT((generic.reshape({batch, c, K}) - ours).abs().max().item<double>(), 1e-12);
}

TEST(SampledGather, GradientsMatchFiniteDifferences) {
  at::manual_seed(2);
  const int64_t batch = 2, h = 12, w = 10, K = 5;
  const at::Tensor image = at::rand({batch, 1, h, w}, at::kDouble);
  // Positions away from half-integers (the sampled points stay put under
  // the finite-difference steps).
  const at::Tensor pos = (at::randint(1, 9, {batch, K, 2}, at::kDouble) +
                          at::rand({batch, K, 2}, at::kDouble) * 0.6 + 0.2);
  const at::Tensor var = at::rand({batch, K, 2}, at::kDouble) + 0.5;
  const at::Tensor val = at::randn({batch, K}, at::kDouble);
  GlimpseOptions o;
  o.num_global(3).num_local(4).region({3, 3});
  auto f = [&](const std::vector<at::Tensor>& in) {
    return SampledGather(in[0], in[1], in[2], in[3], o, 9);
  };
  for (size_t wrt = 0; wrt < 4; ++wrt) {
    EXPECT_LT(testing::max_gradient_error(f, {image, pos, var, val}, wrt), 1e-6) << wrt;
  }
}

TEST(SparseAttention, GradientsReachTheSourceNetwork) {
  at::manual_seed(3);
  SparseAttention model(SparseAttentionOptions().side(24).glimpses(2).glimpse_size(5)
                            .source_width(0.25).source_hidden(16).region(6));
  const at::Tensor images = at::rand({4, 1, 24, 24});
  const at::Tensor labels = at::tensor({0, 3, 7, 9}, at::kLong);
  SparseAttentionImpl::Output out = model->forward(images);
  ASSERT_EQ(out.logits.sizes(), at::IntArrayRef({4, 10}));
  ASSERT_EQ(out.glimpses.sizes(), at::IntArrayRef({4, 2, 1, 5, 5}));
  at::cross_entropy_loss(out.logits, labels).backward();
  for (const auto& p : model->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_TRUE(at::isfinite(p.value().grad()).all().item<bool>()) << p.key();
  }
  // The first convolution's weights and the glimpse variances and values
  // get a gradient (through the positions: no other path reaches them).
  EXPECT_GT(model->source->ptr(0)->parameters()[0].grad().abs().sum().item<double>(), 0);
  EXPECT_GT(model->glimpse->raw_variance.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(model->glimpse->value.grad().abs().sum().item<double>(), 0);
}

// He initialisation keeps the signal's scale through the nine ReLU layers:
// a unit-variance input leaves with a second moment of order 1 (LibTorch's
// default initialisation gave 5e-7 here), and the biases start at zero.
TEST(SourceNetwork, KeepsTheSignalScaleAtInitialisation) {
  at::manual_seed(5);
  torch::nn::Sequential net = SourceNetwork(
      SourceNetworkOptions().side(60).width(0.25).hidden(128).outputs(10));
  const double second_moment =
      net->forward(at::randn({64, 1, 60, 60})).pow(2).mean().item<double>();
  EXPECT_GT(second_moment, 0.1);
  EXPECT_LT(second_moment, 10.0);
  for (const auto& p : net->named_parameters()) {
    if (p.key().find("bias") != std::string::npos) {
      EXPECT_EQ(p.value().abs().max().item<double>(), 0.0) << p.key();
    }
  }
}

// The source network written out with out-of-place functional ops and
// NCHW weights, reading the parameters of `net` (a reference for the
// module's in-place ReLUs and channels-last weights).
at::Tensor SourceReference(torch::nn::Sequential& net, at::Tensor h) {
  for (const auto& child : net->children()) {
    if (auto* conv = child->as<torch::nn::Conv2dImpl>()) {
      h = at::conv2d(h, conv->weight.contiguous(), conv->bias, 1, 1);
    } else if (auto* pool = child->as<torch::nn::MaxPool2dImpl>()) {
      h = at::max_pool2d(h, (*pool->options.kernel_size())[0]);
    } else if (auto* linear = child->as<torch::nn::LinearImpl>()) {
      h = at::linear(h, linear->weight, linear->bias);
    } else if (child->as<torch::nn::FlattenImpl>()) {
      h = h.flatten(1);
    } else {
      EXPECT_NE(child->as<torch::nn::ReLUImpl>(), nullptr) << child->name();
      h = at::relu(h);
    }
  }
  return h;
}

// Channels-last weights and in-place ReLUs compute the same function and
// gradients as the plain NCHW network, in double (the reference kernels)
// and in float (oneDNN); the weights really are channels-last, the first
// layer's one-channel weight included.
TEST(SourceNetwork, ChannelsLastAndInPlaceReluMatchAPlainReference) {
  for (const auto dtype : {at::kDouble, at::kFloat}) {
    at::manual_seed(7);
    torch::nn::Sequential net =
        SourceNetwork(SourceNetworkOptions().side(24).width(0.25).hidden(16).outputs(5));
    net->to(dtype);
    for (const auto& p : net->named_parameters()) {
      if (p.value().dim() == 4) {
        EXPECT_TRUE(p.value().is_contiguous(at::MemoryFormat::ChannelsLast)) << p.key();
        EXPECT_EQ(p.value().stride(1), 1) << p.key();
      }
    }
    const at::Tensor x = at::rand({3, 1, 24, 24}, dtype), mix = at::randn({3, 5}, dtype);
    const at::Tensor y = net->forward(x);
    (y * mix).sum().backward();
    std::vector<at::Tensor> grads;
    for (const auto& p : net->parameters()) grads.push_back(p.grad().clone());
    net->zero_grad();
    const at::Tensor want = SourceReference(net, x);
    (want * mix).sum().backward();
    const double tol = dtype == at::kDouble ? 1e-12 : 1e-4;
    const double scale = want.abs().max().item<double>();
    ASSERT_GT(scale, 0);
    EXPECT_LT((y - want).abs().max().item<double>(), tol * scale) << dtype;
    const auto params = net->parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      const at::Tensor g = params[i].grad();
      EXPECT_LT((grads[i] - g).abs().max().item<double>(),
                tol * std::max(1.0, g.abs().max().item<double>()))
          << dtype << " parameter " << i;
    }
  }
  // Off: plain contiguous weights.
  torch::nn::Sequential plain = SourceNetwork(
      SourceNetworkOptions().side(24).width(0.25).hidden(16).outputs(5).channels_last(false));
  EXPECT_TRUE(plain->parameters()[2].is_contiguous());
  EXPECT_FALSE(plain->parameters()[2].is_contiguous(at::MemoryFormat::ChannelsLast));
}

TEST(BoxSaturationPenalty, OnlyPastTheBoundAndPullsBack) {
  const at::Tensor raw =
      at::tensor({5.0, -6.0, 3.0, 0.0, 4.0, -4.0, 7.0, 1.0}, at::kDouble).view({1, 2, 4})
          .requires_grad_();
  // Box 1: 1^2 + 2^2 = 5; box 2: 3^2 = 9; mean 7.
  const at::Tensor p = BoxSaturationPenalty(raw);
  EXPECT_DOUBLE_EQ(p.item<double>(), 7.0);
  p.backward();
  const at::Tensor g = raw.grad().view({8});
  // d/draw (|raw| - 4)^2 / 2 boxes: towards zero, nothing within the bound.
  const std::vector<double> want = {1.0, -2.0, 0, 0, 0, 0, 3.0, 0};
  for (int i = 0; i < 8; ++i) EXPECT_DOUBLE_EQ(g[i].item<double>(), want[i]) << i;
  EXPECT_ERROR_CONTAINS(BoxSaturationPenalty(at::zeros({2, 3})), "raw_boxes must be [..., 4]");
}

TEST(SparseAttention, InitialVarianceInPixels) {
  SparseAttention model(SparseAttentionOptions().side(40).glimpses(3).glimpse_size(4)
                            .source_width(0.25).source_hidden(8).initial_variance(2.5));
  const at::Tensor v = VariancesFromRaw(model->glimpse->raw_variance, at::tensor({40.0f, 40.0f}),
                                        0.1, 0.1);
  EXPECT_LT((v - 2.5).abs().max().item<double>(), 1e-5);
  EXPECT_ERROR_CONTAINS(SparseAttention(SparseAttentionOptions().side(40).source_hidden(8)
                                            .source_width(0.25).initial_variance(0.05)),
                        "initial_variance must be above min_variance (0.1), got 0.05");
}

TEST(SparseAttention, BoxesStartOnAGridOverTheCentralArea) {
  at::manual_seed(4);
  SparseAttention one(SparseAttentionOptions().side(41).glimpses(1).glimpse_size(4)
                          .source_width(0.25).source_hidden(8));
  SparseAttention eight(SparseAttentionOptions().side(41).glimpses(8).glimpse_size(4)
                            .source_width(0.25).source_hidden(8));
  // The last layer's bias places the boxes (its weights are small): sigmoid(+-2)
  // * 40 = 4.77, 35.23.
  auto bias_boxes = [](SparseAttention& m) {
    const auto last = m->source->ptr<torch::nn::LinearImpl>(m->source->size() - 1);
    return GlimpseBoxes(last->bias.detach().view({1, -1, 4}), 41, 41);
  };
  const at::Tensor b1 = bias_boxes(one);
  const double lo = 40 / (1 + std::exp(2.0)), hi = 40 - lo;
  EXPECT_LT((b1 - at::tensor({lo, lo, hi, hi}).view({1, 1, 4})).abs().max().item<double>(), 1e-4);
  // Eight glimpses: cells of a 3 x 3 grid, row-major, the last cell unused.
  const at::Tensor b8 = bias_boxes(eight);
  const double cell = (hi - lo) / 3;
  for (int64_t i = 0; i < 8; ++i) {
    const double y0 = lo + cell * double(i / 3), x0 = lo + cell * double(i % 3);
    EXPECT_LT((b8[0][i] - at::tensor({y0, x0, y0 + cell, x0 + cell})).abs().max().item<double>(),
              1e-3) << i;
  }
}

TEST(GlimpseErrors, NameTheArgument) {
  EXPECT_ERROR_CONTAINS(GlimpseLayer(GlimpseOptions().glimpses(0)), "glimpses must be >= 1, got 0");
  EXPECT_ERROR_CONTAINS(GlimpseLayer(GlimpseOptions().size(0)), "size (k of a k x k glimpse) must be >= 1, got 0");
  EXPECT_ERROR_CONTAINS(SparseAttention(SparseAttentionOptions().glimpses(0)), "glimpses must be >= 1, got 0");
  EXPECT_ERROR_CONTAINS(GlimpseLayer(GlimpseOptions().eval_samples(-2)),
                        "GlimpseLayer: eval_samples must be >= 0, got -2");
  GlimpseLayer layer(GlimpseOptions().glimpses(2).size(3));
  EXPECT_ERROR_CONTAINS(layer->forward(at::rand({2, 1, 8, 8}), at::zeros({2, 1, 4})),
                        "raw_boxes must be [batch, glimpses, 4] = [2, 2, 4], got [2, 1, 4]");
  EXPECT_ERROR_CONTAINS(layer->forward(at::rand({2, 8, 8}), at::zeros({2, 2, 4})),
                        "image must be [batch, channels, height, width], got [2, 8, 8]");
  at::Tensor nan_boxes = at::zeros({2, 2, 4});
  nan_boxes[1][0][2] = std::nan("");
  EXPECT_ERROR_CONTAINS(layer->forward(at::rand({2, 1, 8, 8}), nan_boxes), "raw_boxes holds NaN");
  SparseAttention model(SparseAttentionOptions().side(24).source_width(0.25).source_hidden(8));
  EXPECT_ERROR_CONTAINS(model->forward(at::rand({2, 1, 28, 28})),
                        "SparseAttention: images must be [batch, 1, 24, 24], got [2, 1, 28, 28]");
}

}  // namespace
}  // namespace sparse_hyper
}  // namespace indexgrad
