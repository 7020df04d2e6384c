#include "sparse_hyper/attention.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <torch/nn/init.h>

#include <algorithm>
#include <cmath>

#include "kernels/common/checks.h"

namespace indexgrad {
namespace sparse_hyper {
namespace {

torch::nn::Conv2d Conv(int64_t in, int64_t out) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1));
}

// In place: each ReLU's input is a convolution's or a linear layer's
// output, which their backward passes do not read.
torch::nn::ReLU Relu() { return torch::nn::ReLU(torch::nn::ReLUOptions().inplace(true)); }

}  // namespace

void CheckImages(const char* op, const at::Tensor& images, int64_t channels, int64_t side) {
  TORCH_CHECK(images.defined() && images.dim() == 4 && images.size(1) == channels &&
                  images.size(2) == side && images.size(3) == side,
              op, ": images must be [batch, ", channels, ", ", side, ", ", side, "], got ",
              images.defined() ? shape_string(images.sizes()) : "undefined");
  TORCH_CHECK(at::isFloatingType(images.scalar_type()), op,
              ": images must be floating point, got ", images.scalar_type());
}

torch::nn::Sequential SourceNetwork(const SourceNetworkOptions& o) {
  TORCH_CHECK(o.side() >= 8, "SourceNetwork: side must be >= 8 (two poolings, 4 and 2), got ",
              o.side());
  TORCH_CHECK(o.width() > 0, "SourceNetwork: width must be > 0, got ", o.width());
  TORCH_CHECK(o.hidden() >= 1 && o.outputs() >= 1 && o.channels() >= 1,
              "SourceNetwork: hidden, outputs and channels must be >= 1, got ", o.hidden(), ", ",
              o.outputs(), ", ", o.channels());
  const auto ch = [&](int64_t c) {
    return std::max<int64_t>(1, static_cast<int64_t>(std::lround(c * o.width())));
  };
  const int64_t c1 = ch(32), c2 = ch(64), c3 = ch(128);
  const int64_t after = (o.side() / 4) / 2;
  torch::nn::Sequential net(
      Conv(o.channels(), c1), Relu(), Conv(c1, c1), Relu(),
      torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(4)),
      Conv(c1, c2), Relu(), Conv(c2, c2), Relu(),
      torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2)),
      Conv(c2, c3), Relu(), Conv(c3, c3), Relu(),
      torch::nn::Flatten(),
      torch::nn::Linear(c3 * after * after, o.hidden()), Relu(),
      torch::nn::Linear(o.hidden(), o.hidden()), Relu(),
      torch::nn::Linear(o.hidden(), o.outputs()));
  // Our choice (the paper is silent): He initialisation (normal, fan-in,
  // gain sqrt(2)) and zero biases. LibTorch's default (weight variance
  // 1 / (3 fan_in)) divides the activations' second moment by about 6 per
  // ReLU layer: a unit-variance input left the quarter-width network with
  // second moment 5e-7 (He: 0.6; biases zero in both; the same network in
  // python3-torch). On the default preset (564 steps) it measured: test
  // error 79.1 -> 62.7 % (sparse1, lr 1e-3) and 72.8 -> 61.9 % (ConvNet,
  // lr 3e-4).
  {
    at::NoGradGuard no_grad;
    for (auto& p : net->named_parameters()) {
      if (p.key().find("weight") != std::string::npos) {
        torch::nn::init::kaiming_normal_(p.value(), 0, torch::kFanIn, torch::kReLU);
      } else {
        p.value().zero_();
      }
    }
    if (o.channels_last()) {
      // Tensor::contiguous(ChannelsLast) leaves a one-channel weight
      // [c, 1, 3, 3] as it is (its strides fit both layouts) and oneDNN
      // then takes NCHW for the first layer; `to` restrides it.
      for (auto& p : net->parameters()) {
        if (p.dim() == 4) {
          p.set_data(p.to(p.options(), /*non_blocking=*/false, /*copy=*/false,
                          at::MemoryFormat::ChannelsLast));
        }
      }
    }
  }
  return net;
}

SparseAttentionImpl::SparseAttentionImpl(SparseAttentionOptions options_)
    : options(std::move(options_)) {
  const char* op = "SparseAttention";
  TORCH_CHECK(options.glimpses() >= 1, op, ": glimpses must be >= 1, got ", options.glimpses());
  TORCH_CHECK(options.classifier_hidden() >= 1 && options.classes() >= 2, op,
              ": classifier_hidden must be >= 1 and classes >= 2, got ",
              options.classifier_hidden(), " and ", options.classes());
  const int64_t g = options.glimpses();
  source = register_module(
      "source", SourceNetwork(SourceNetworkOptions()
                                  .side(options.side())
                                  .channels(options.channels())
                                  .width(options.source_width())
                                  .hidden(options.source_hidden())
                                  .outputs(4 * g)));
  // Our choice (the paper is silent): the boxes start as the cells of an
  // n x n grid (n = ceil(sqrt(g))) over the central 76 % of the image
  // (sigmoid(-+2)); one glimpse: that whole area, a coarse view of where
  // the digit can be. The last layer's weights are scaled by 0.1, so the
  // boxes start near these places for every image.
  {
    at::NoGradGuard no_grad;
    auto last = source->ptr<torch::nn::LinearImpl>(source->size() - 1);
    last->weight.mul_(0.1);
    const int64_t n = static_cast<int64_t>(std::ceil(std::sqrt(double(g)) - 1e-9));
    const double lo = 1 / (1 + std::exp(2.0)), step = (1 - 2 * lo) / double(n);
    auto logit = [](double p) { return std::log(p / (1 - p)); };
    std::vector<double> bias;
    for (int64_t i = 0; i < g; ++i) {
      const double y0 = lo + step * double(i / n), x0 = lo + step * double(i % n);
      for (double f : {y0, x0, y0 + step, x0 + step}) bias.push_back(logit(f));
    }
    last->bias.copy_(at::tensor(bias));
  }
  glimpse = register_module("glimpse", GlimpseLayer(SparseAttentionGlimpseOptions(options)));
  if (options.initial_variance() > 0) {
    // Invert variance = softplus(raw + 2) * side * scale + min.
    const GlimpseOptions& go = glimpse->options;
    const double excess = (options.initial_variance() - go.min_variance()) /
                          (double(options.side()) * go.variance_scale());
    TORCH_CHECK(excess > 0, op, ": initial_variance must be above min_variance (",
                go.min_variance(), "), got ", options.initial_variance());
    at::NoGradGuard no_grad;
    glimpse->raw_variance.fill_(std::log(std::expm1(excess)) - 2);
  }
  classifier = register_module("classifier", SparseAttentionClassifier(options));
}

GlimpseOptions SparseAttentionGlimpseOptions(const SparseAttentionOptions& options) {
  return GlimpseOptions()
      .glimpses(options.glimpses())
      .size(options.glimpse_size())
      .num_global(options.num_global())
      .num_local(options.num_local())
      .region({options.region(), options.region()})
      .seed(options.seed())
      .eval_samples(options.eval_samples());
}

torch::nn::Sequential SparseAttentionClassifier(const SparseAttentionOptions& options) {
  const int64_t k = options.glimpse_size();
  return torch::nn::Sequential(
      torch::nn::Linear(options.glimpses() * options.channels() * k * k,
                        options.classifier_hidden()),
      torch::nn::ReLU(), torch::nn::Linear(options.classifier_hidden(), options.classes()));
}

at::Tensor BoxSaturationPenalty(const at::Tensor& raw_boxes, double bound) {
  TORCH_CHECK(raw_boxes.dim() >= 1 && raw_boxes.size(-1) == 4,
              "BoxSaturationPenalty: raw_boxes must be [..., 4], got ",
              shape_string(raw_boxes.sizes()));
  TORCH_CHECK(bound >= 0, "BoxSaturationPenalty: bound must be >= 0, got ", bound);
  return at::relu(raw_boxes.abs() - bound).pow(2).sum(-1).mean();
}

SparseAttentionImpl::Output SparseAttentionImpl::forward(const at::Tensor& images) {
  CheckImages("SparseAttention", images, options.channels(), options.side());
  const int64_t batch = images.size(0);
  Output out;
  out.raw_boxes = source->forward(images).view({batch, options.glimpses(), 4});
  out.glimpses = glimpse->forward(images, out.raw_boxes);
  out.logits = classifier->forward(out.glimpses.reshape({batch, -1}));
  return out;
}

}  // namespace sparse_hyper
}  // namespace indexgrad
