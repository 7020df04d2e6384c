#include "diff_masks/gumbel_mask.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/pooling.h>

#include "kernels/common/schedules.h"

namespace indexgrad {
namespace diff_masks {

namespace {

// Forward value of `hard`, gradient of `soft`.
at::Tensor straight_through(const at::Tensor& hard, const at::Tensor& soft) {
  return soft + (hard - soft).detach();
}

// The Gumbel table's endgame (GumbelMaskOptions::endgame): forward, the
// number of channels on each pixel, channel k on argmax_p logits[k, p];
// backward, with g = dLoss/dMask, channel k's logits get
//   g                                  if g[pick_k] > 0 (the loss wants the
//                                      channel's pixel dimmer: background,
//                                      or shared with another channel),
//   s_k * (g - <s_k, g>) / temperature otherwise (the softmax straight-
//                                      through, s_k = softmax(logits_k / T)).
class EndgameChannels : public torch::autograd::Function<EndgameChannels> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& logits,
                            double temperature) {
    const at::Tensor pick = logits.argmax(1);  // [K]
    ctx->save_for_backward({at::softmax(logits / temperature, 1), pick});
    ctx->saved_data["temperature"] = temperature;
    return at::zeros({logits.size(1)}, logits.options())
        .index_add_(0, pick, at::ones({logits.size(0)}, logits.options()));
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& soft = saved[0];
    const at::Tensor& pick = saved[1];
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const at::Tensor g = grads[0].reshape({1, -1});  // [1, P]
    const at::Tensor st = soft * (g - (soft * g).sum(1, /*keepdim=*/true)) / temperature;
    const at::Tensor wrong = g.squeeze(0).index_select(0, pick).gt(0).unsqueeze(1);  // [K, 1]
    return {at::where(wrong, g.expand_as(soft), st), at::Tensor()};
  }
};

}  // namespace

at::Tensor GumbelEndgameSum(const at::Tensor& logits, double temperature) {
  TORCH_CHECK(logits.dim() == 2, "GumbelEndgameSum: logits must be [k, pixels], got ",
              logits.sizes());
  TORCH_CHECK(at::isFloatingType(logits.scalar_type()),
              "GumbelEndgameSum: logits must be floating point, got ", logits.scalar_type());
  TORCH_CHECK(temperature > 0, "GumbelEndgameSum: temperature must be > 0, got ", temperature);
  return EndgameChannels::apply(logits, temperature);
}

GumbelMaskOperatorImpl::GumbelMaskOperatorImpl(GumbelMaskOptions options_)
    : options(options_) {
  const char* op = "GumbelMaskOperator";
  TORCH_CHECK(options.height() >= 1 && options.width() >= 1, op,
              ": height and width must be positive, got ", options.height(), " x ",
              options.width());
  TORCH_CHECK(!options.network() ||
                  (options.height() % 4 == 0 && options.width() % 4 == 0),
              op, ": with network, height and width must be multiples of 4, got ",
              options.height(), " x ", options.width());
  TORCH_CHECK(options.k() >= 1, op, ": k must be >= 1, got ", options.k());
  TORCH_CHECK(options.channels() >= 1, op, ": channels must be >= 1, got ",
              options.channels());
  TORCH_CHECK(options.temperature() > 0, op,
              ": temperature must be > 0, got ", options.temperature());
  TORCH_CHECK(options.noise_fraction() > 0 && options.noise_fraction() <= 1, op,
              ": noise_fraction must be in (0, 1], got ", options.noise_fraction());
  TORCH_CHECK(options.endgame_lr() > 0 && std::isfinite(options.endgame_lr()), op,
              ": endgame_lr must be a finite number > 0, got ", options.endgame_lr());
  TORCH_CHECK(!(options.endgame() && options.network()), op,
              ": endgame is for the logit table (network = false)");
  if (!options.network()) {
    // Nearly uniform: every pixel equally likely at the start.
    logits = register_parameter(
        "logits", at::randn({options.k(), options.height() * options.width()}) * 0.01);
    return;
  }
  namespace nn = torch::nn;
  const int64_t c = options.channels();
  network = register_module(
      "network",
      nn::Sequential(
          nn::Conv2d(nn::Conv2dOptions(1, c, 3).padding(1)), nn::ReLU(),
          nn::MaxPool2d(nn::MaxPool2dOptions(2)),
          nn::Conv2d(nn::Conv2dOptions(c, 2 * c, 3).padding(1)), nn::ReLU(),
          nn::MaxPool2d(nn::MaxPool2dOptions(2)),
          nn::ConvTranspose2d(nn::ConvTranspose2dOptions(2 * c, c, 2).stride(2)),
          nn::ReLU(),
          nn::ConvTranspose2d(
              nn::ConvTranspose2dOptions(c, options.k(), 2).stride(2))));
  input = register_buffer("input",
                          at::rand({1, 1, options.height(), options.width()}));
}

int64_t GumbelMaskOperatorImpl::first_quiet_step(int64_t total) const {
  return static_cast<int64_t>(
      std::ceil(options.noise_fraction() * static_cast<double>(std::max<int64_t>(0, total))));
}

void GumbelMaskOperatorImpl::SetProgress(int64_t step, int64_t total) {
  noise_scale_ = total > 0 ? std::max(0.0, 1.0 - static_cast<double>(step) /
                                                     (options.noise_fraction() *
                                                      static_cast<double>(total)))
                           : 0.0;
  // From the step and not from a flag of the last call, so that a resumed
  // run restarts the moments at the same step as an uninterrupted one.
  endgame_begins_ = options.endgame() && step == first_quiet_step(total);
}

double GumbelMaskOperatorImpl::LearningRate(int64_t step, int64_t total, double lr) {
  if (options.endgame() && noise_scale_ == 0) {
    const int64_t start = first_quiet_step(total);
    return CosineDecay(options.endgame_lr(), step - start, std::max<int64_t>(1, total - start));
  }
  return options.cosine_lr() ? CosineDecay(lr, step, total) : lr;
}

std::vector<MaskOperator::Rows> GumbelMaskOperatorImpl::RestartedRows() {
  if (!endgame_begins_) return {};
  return {{logits, at::arange(options.k(), at::TensorOptions().dtype(at::kLong)
                                                   .device(logits.device()))}};
}

at::Tensor GumbelMaskOperatorImpl::Logits() {
  if (!options.network()) return logits;
  return network->forward(input).view({options.k(), -1});  // [k, H * W]
}

at::Tensor GumbelMaskOperatorImpl::Mask() {
  at::Tensor z = Logits();
  if (options.endgame() && noise_scale_ == 0) {
    const at::Tensor sum =
        GumbelEndgameSum(z, options.temperature()).view({options.height(), options.width()});
    return options.clamp() ? straight_through(sum.clamp(0, 1), sum) : sum;
  }
  if (noise_scale_ > 0) {
    // Gumbel(0, 1) noise: -log(-log(U)), U in (0, 1).
    const at::Tensor u = at::rand_like(z).clamp(1e-10, 1 - 1e-10);
    z = z - noise_scale_ * at::log(-at::log(u));
  }
  const at::Tensor soft = at::softmax(z / options.temperature(), 1);
  const at::Tensor hard = at::zeros_like(soft).scatter_(
      1, soft.argmax(1, /*keepdim=*/true), 1.0);
  const at::Tensor sum =
      straight_through(hard, soft).sum(0).view({options.height(), options.width()});
  return options.clamp() ? straight_through(sum.clamp(0, 1), sum) : sum;
}

at::Tensor GumbelMaskOperatorImpl::Indices() {
  at::NoGradGuard no_grad;
  return PixelsOfFlat(Logits().argmax(1), options.width());
}

}  // namespace diff_masks
}  // namespace indexgrad
