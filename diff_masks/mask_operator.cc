#include "diff_masks/mask_operator.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/pooling.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

namespace indexgrad {
namespace diff_masks {

namespace {

// start -> end geometrically over the first `fraction` of `total` steps.
double AnnealGeometric(double start, double end, double fraction, int64_t step,
                       int64_t total) {
  const double a = total > 0
      ? std::min(1.0, static_cast<double>(step) / (fraction * static_cast<double>(total)))
      : 1.0;
  return start * std::pow(end / start, a);
}

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

namespace detail {

void PointRescue::Check(const char* op, int64_t every, double stddev, int64_t steps,
                        double peak) {
  TORCH_CHECK(every >= 0 && steps >= 1 && stddev >= 0 && std::isfinite(stddev), op,
              ": rescue_every must be >= 0, rescue_steps >= 1 and rescue_stddev >= 0 (0: the "
              "starting stddev), got ",
              every, ", ", steps, " and ", stddev);
  TORCH_CHECK(peak >= 0 && peak <= 1, op,
              ": rescue_peak must be in [0, 1] (0: rescue doubled points only), got ", peak);
}

PointRescue::PointRescue(int64_t every, double stddev, int64_t steps, double peak, double end)
    : every_(every), stddev_(stddev), steps_(steps), peak_(peak), end_(end) {}

bool PointRescue::Due(double global, int64_t step, int64_t total) const {
  return every_ > 0 && global <= end_ * (1 + 1e-9) && (step + 1) % every_ == 0 &&
         step + 1 + 2 * steps_ <= total;
}

at::Tensor PointRescue::Stddevs(const at::Tensor& rescued_at, double global,
                                int64_t step) const {
  const int64_t k = rescued_at.size(0);
  at::Tensor out = at::full({k}, global, at::kDouble);
  if (every_ <= 0) return out;
  const at::Tensor rescued = rescued_at.to(at::kCPU).contiguous();
  const int64_t* at_step = rescued.data_ptr<int64_t>();
  double* o = out.data_ptr<double>();
  for (int64_t i = 0; i < k; ++i) {
    if (at_step[i] < 0 || step < at_step[i]) continue;
    o[i] = std::max(o[i], AnnealGeometric(stddev_, end_, 1.0, step - at_step[i], steps_));
  }
  return out;
}

std::vector<int64_t> PointRescue::Mark(at::Tensor& rescued_at, const at::Tensor& pixels,
                                       const at::Tensor& peaks, const at::Tensor& stddevs,
                                       int64_t height, int64_t width, int64_t step) const {
  // The later of two points on one pixel is rescued, and any point with
  // less than peak_ of its mass on its fullest pixel; points still
  // annealing from an earlier rescue are left to settle.
  const at::Tensor px_cpu = pixels.to(at::kCPU).contiguous();
  const at::Tensor peak_cpu = peaks.to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor sd_cpu = stddevs.to(at::kCPU, at::kDouble).contiguous();
  const int64_t* px = px_cpu.data_ptr<int64_t>();
  const double* peak = peak_cpu.data_ptr<double>();
  const double* sd = sd_cpu.data_ptr<double>();
  at::Tensor rescued = rescued_at.to(at::kCPU).contiguous();
  int64_t* at_step = rescued.data_ptr<int64_t>();
  std::vector<uint8_t> taken(height * width, 0);
  std::vector<int64_t> now;
  for (int64_t i = 0; i < rescued.size(0); ++i) {
    uint8_t& t = taken[px[2 * i] * width + px[2 * i + 1]];
    const bool doubled = t != 0;
    t = 1;
    if (sd[i] > end_ * (1 + 1e-9)) continue;  // still annealing
    if (doubled || peak[i] < peak_) {
      at_step[i] = step + 1;
      now.push_back(i);
    }
  }
  rescued_at.copy_(rescued);
  return now;
}

}  // namespace detail

GaussianMaskOperatorImpl::GaussianMaskOperatorImpl(GaussianMaskOptions options_)
    : options(options_) {
  const char* op = "GaussianMaskOperator";
  TORCH_CHECK(options.height() >= 1 && options.width() >= 1, op,
              ": height and width must be positive, got ", options.height(),
              " x ", options.width());
  TORCH_CHECK(options.k() >= 1, op, ": k must be >= 1, got ", options.k());
  TORCH_CHECK(options.stddev_start() >= 0 && options.stddev_end() > 0, op,
              ": stddev_start and stddev_end must be > 0 (stddev_start 0: a quarter of the "
              "smaller side), got ",
              options.stddev_start(), " and ", options.stddev_end());
  TORCH_CHECK(options.anneal_fraction() > 0 && options.anneal_fraction() <= 1,
              op, ": anneal_fraction must be in (0, 1], got ",
              options.anneal_fraction());
  detail::PointRescue::Check(op, options.rescue_every(), options.rescue_stddev(),
                             options.rescue_steps(), options.rescue_peak());
  stddev_start_ = options.stddev_start() > 0
                      ? options.stddev_start()
                      : static_cast<double>(std::min(options.height(), options.width())) / 4;
  stddev_ = stddev_start_;
  rescue_ = detail::PointRescue(
      options.rescue_every(),
      options.rescue_stddev() > 0 ? options.rescue_stddev() : stddev_start_,
      options.rescue_steps(), options.rescue_peak(), options.stddev_end());
  const at::Tensor scale = at::tensor(
      {static_cast<float>(options.height() - 1),
       static_cast<float>(options.width() - 1)});
  points = register_parameter("points", at::rand({options.k(), 2}) * scale);
  rescued_at = register_buffer("rescued_at", at::full({options.k()}, -1, at::kLong));
}

void GaussianMaskOperatorImpl::SetProgress(int64_t step, int64_t total) {
  step_ = step;
  total_ = total;
  stddev_ = AnnealGeometric(stddev_start_, options.stddev_end(), options.anneal_fraction(),
                            step, total);
}

at::Tensor GaussianMaskOperatorImpl::PointStddevs() const {
  return rescue_.Stddevs(rescued_at, stddev_, step_);
}

at::Tensor GaussianMaskOperatorImpl::Mask() {
  const auto render = [this](const auto& stddev) {
    const at::Tensor rows = PixelMasses(points.select(1, 0), stddev, options.height());
    const at::Tensor cols = PixelMasses(points.select(1, 1), stddev, options.width());
    return rows.t().mm(cols);  // [H, W]
  };
  // Per-point stddevs once any point has been rescued (the buffer, so that a
  // resumed run renders as the saved one did).
  if (options.rescue_every() > 0 && rescued_at.max().item<int64_t>() >= 0) {
    return render(PointStddevs().to(points.device()));
  }
  return render(stddev_);
}

void GaussianMaskOperatorImpl::AfterStep() {
  at::NoGradGuard no_grad;
  rescued_now_.clear();
  constexpr double kInside = 0.49;
  points.select(1, 0).clamp_(-kInside, options.height() - 1 + kInside);
  points.select(1, 1).clamp_(-kInside, options.width() - 1 + kInside);
  if (!rescue_.Due(stddev_, step_, total_)) return;
  const at::Tensor stddevs = PointStddevs();
  const at::Tensor p = points.detach().to(at::kCPU, at::kDouble);
  const at::Tensor peaks =
      std::get<0>(PixelMasses(p.select(1, 0), stddevs, options.height()).max(1)) *
      std::get<0>(PixelMasses(p.select(1, 1), stddevs, options.width()).max(1));
  rescued_now_ = rescue_.Mark(rescued_at, Indices(), peaks, stddevs, options.height(),
                              options.width(), step_);
}

std::vector<MaskOperator::Rows> GaussianMaskOperatorImpl::RestartedRows() {
  if (rescued_now_.empty()) return {};
  return {{points, at::tensor(rescued_now_, at::kLong).to(points.device())}};
}

namespace {

template <typename Key>
Key StateKey(at::TensorImpl* impl) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream key;  // what c10::guts::to_string(impl) gives
    key << impl;
    return key.str();
  } else {
    return static_cast<Key>(impl);
  }
}

}  // namespace

torch::optim::OptimizerParamState* FindOptimizerState(torch::optim::Optimizer& optimizer,
                                                      const at::Tensor& parameter) {
  auto& state = optimizer.state();
  using Key = std::decay_t<decltype(state.begin()->first)>;
  const auto it = state.find(StateKey<Key>(parameter.unsafeGetTensorImpl()));
  return it == state.end() ? nullptr : it->second.get();
}

void RestartMoments(MaskOperator& op, torch::optim::Optimizer& optimizer) {
  for (const MaskOperator::Rows& r : op.RestartedRows()) {
    torch::optim::OptimizerParamState* state = FindOptimizerState(optimizer, r.parameter);
    if (state == nullptr) continue;  // no step taken yet
    const auto clear = [&r](at::Tensor& moment) {
      if (moment.defined()) moment.index_fill_(0, r.rows, 0);
    };
    if (auto* adam = dynamic_cast<torch::optim::AdamParamState*>(state)) {
      clear(adam->exp_avg());
      clear(adam->exp_avg_sq());
      clear(adam->max_exp_avg_sq());
    } else if (auto* adamw = dynamic_cast<torch::optim::AdamWParamState*>(state)) {
      clear(adamw->exp_avg());
      clear(adamw->exp_avg_sq());
      clear(adamw->max_exp_avg_sq());
    } else if (auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(state)) {
      clear(sgd->momentum_buffer());
    } else {
      TORCH_CHECK(false, "RestartMoments: optimizer state of type ",
                  typeid(*state).name(), " is not supported (Adam, AdamW, SGD)");
    }
  }
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

MlpMaskOperatorImpl::MlpMaskOperatorImpl(MlpMaskOptions options_, MaskDecoder decoder_)
    : options(options_) {
  const char* op = "MlpMaskOperator";
  TORCH_CHECK(options.k() >= 1, op, ": k must be >= 1, got ", options.k());
  TORCH_CHECK(options.anneal_fraction() > 0 && options.anneal_fraction() <= 1, op,
              ": anneal_fraction must be in (0, 1], got ", options.anneal_fraction());
  TORCH_CHECK(decoder_, op, ": decoder is empty");
  TORCH_CHECK(decoder_->options.height() == options.height() &&
                  decoder_->options.width() == options.width(),
              op, ": the decoder renders ", decoder_->options.height(), " x ",
              decoder_->options.width(), " masks, the operator was asked for ",
              options.height(), " x ", options.width());
  const double lo = decoder_->options.min_stddev(), hi = decoder_->max_stddev();
  stddev_start_ = options.stddev_start() > 0 ? options.stddev_start() : hi;
  stddev_end_ = options.stddev_end() > 0 ? options.stddev_end() : lo;
  TORCH_CHECK(options.stddev_start() >= 0 && options.stddev_end() >= 0 &&
                  stddev_start_ <= hi * (1 + 1e-9) && stddev_end_ >= lo * (1 - 1e-9),
              op, ": stddev_start and stddev_end must be within the decoder's trained range [",
              lo, ", ", hi, "] (0: its ends), got ", options.stddev_start(), " and ",
              options.stddev_end());
  stddev_ = stddev_start_;
  decoder = register_module("decoder", decoder_);
  for (at::Tensor& p : decoder->parameters()) p.requires_grad_(false);
  decoder->eval();
  detail::PointRescue::Check(op, options.rescue_every(), options.rescue_stddev(),
                             options.rescue_steps(), options.rescue_peak());
  const double rescue_stddev =
      options.rescue_stddev() > 0 ? options.rescue_stddev() : stddev_start_;
  TORCH_CHECK(rescue_stddev >= lo * (1 - 1e-9) && rescue_stddev <= hi * (1 + 1e-9), op,
              ": rescue_stddev must be within the decoder's trained range [", lo, ", ", hi,
              "], got ", rescue_stddev);
  rescue_ = detail::PointRescue(options.rescue_every(), rescue_stddev, options.rescue_steps(),
                                options.rescue_peak(), stddev_end_);
  const at::Tensor any = decoder->network->parameters().front();
  points = register_parameter("points", at::rand({options.k(), 2}, any.options()));
  rescued_at = register_buffer("rescued_at", at::full({options.k()}, -1, at::kLong));
}

at::Tensor PixelsOfFlat(const at::Tensor& flat, int64_t width) {
  return at::stack({flat.div(width, "floor"), flat.remainder(width)}, 1);
}

at::Tensor GaussianMaskOperatorImpl::Indices() {
  return at::floor(points.detach() + 0.5).to(at::kLong);
}

at::Tensor GumbelMaskOperatorImpl::Indices() {
  at::NoGradGuard no_grad;
  return PixelsOfFlat(Logits().argmax(1), options.width());
}

at::Tensor MlpMaskOperatorImpl::Indices() {
  const at::Tensor scale = at::tensor({static_cast<double>(options.height() - 1),
                                       static_cast<double>(options.width() - 1)},
                                      points.options());
  return at::floor(points.detach() * scale + 0.5).to(at::kLong);
}

at::Tensor MlpMaskOperatorImpl::PointStddevs() const {
  return rescue_.Stddevs(rescued_at, stddev_, step_);
}

at::Tensor MlpMaskOperatorImpl::PointDistributions(const at::Tensor& stddevs) {
  return at::softmax(decoder->PointLogits(points, stddevs.to(points.options())), 1);
}

at::Tensor MlpMaskOperatorImpl::Mask() {
  // Per-point stddevs once any point has been rescued (the buffer, so that a
  // resumed run renders as the saved one did).
  if (options.rescue_every() > 0 && rescued_at.max().item<int64_t>() >= 0) {
    return PointDistributions(PointStddevs())
        .sum(0)
        .view({options.height(), options.width()});
  }
  return decoder->Render(points.unsqueeze(0), stddev_).squeeze(0);  // [H, W]
}

void MlpMaskOperatorImpl::SetProgress(int64_t step, int64_t total) {
  step_ = step;
  total_ = total;
  stddev_ = AnnealGeometric(stddev_start_, stddev_end_, options.anneal_fraction(), step, total);
}

void MlpMaskOperatorImpl::AfterStep() {
  at::NoGradGuard no_grad;
  rescued_now_.clear();
  points.clamp_(0, 1);
  if (!rescue_.Due(stddev_, step_, total_)) return;
  const at::Tensor stddevs = PointStddevs();
  const at::Tensor peaks = std::get<0>(PointDistributions(stddevs).max(1));
  rescued_now_ = rescue_.Mark(rescued_at, Indices(), peaks, stddevs, options.height(),
                              options.width(), step_);
}

std::vector<MaskOperator::Rows> MlpMaskOperatorImpl::RestartedRows() {
  if (rescued_now_.empty()) return {};
  return {{points, at::tensor(rescued_now_, at::kLong).to(points.device())}};
}

void MlpMaskOperatorImpl::train(bool on) {
  MaskOperator::train(on);
  decoder->eval();
}

}  // namespace diff_masks
}  // namespace indexgrad
