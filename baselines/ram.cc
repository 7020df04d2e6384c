#include "baselines/ram.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include <cmath>

#include "kernels/common/checks.h"

namespace indexgrad {
namespace baselines {
namespace {

torch::nn::Linear Dense(int64_t in, int64_t out) { return torch::nn::Linear(in, out); }

// Pixel index of a location coordinate in [-1, 1] over `size` pixels.
at::Tensor PixelOf(const at::Tensor& coordinate, int64_t size) {
  return at::floor((coordinate.clamp(-1, 1) + 1) * 0.5 * double(size - 1) + 0.5).to(at::kLong);
}

}  // namespace

at::Tensor LocationPixels(const at::Tensor& locations, int64_t height, int64_t width) {
  return at::stack({PixelOf(locations.select(-1, 0), height),
                    PixelOf(locations.select(-1, 1), width)},
                   -1);
}

RetinaSource::RetinaSource(const at::Tensor& images, int64_t patch, int64_t scales,
                           int64_t samples)
    : patch_(patch), scales_(scales) {
  const char* op = "Retina";
  TORCH_CHECK(images.dim() == 4, op, ": images must be [batch, channels, height, width], got ",
              shape_string(images.sizes()));
  TORCH_CHECK(patch >= 1 && scales >= 1 && scales <= 16, op,
              ": patch must be >= 1 and scales in [1, 16], got ", patch, " and ", scales);
  TORCH_CHECK(samples >= 1, op, ": samples must be >= 1, got ", samples);
  TORCH_CHECK(images.is_floating_point(), op, ": images must be floating point, got ",
              images.scalar_type());
  rows_ = images.size(0) * samples;
  channels_ = images.size(1);
  height_ = images.size(2);
  width_ = images.size(3);
  pad_ = (patch << (scales - 1)) / 2 + 1;  // > half the largest side
  const at::Tensor padded = at::constant_pad_nd(images, {pad_, pad_, pad_, pad_}, 0);
  padded_ = padded.reshape({-1});
  // Block sums from an integral image I (double, so differences of large
  // sums stay exact to ~1e-12; a zero first row and column): the 2^s x 2^s
  // block at (y, x) is I[y+k][x+k] - I[y][x+k] - I[y+k][x] + I[y][x].
  // Built once per image batch; each glimpse reads four corners per pixel.
  if (scales > 1) {
    integral_ = at::constant_pad_nd(padded.to(at::kDouble).cumsum(2).cumsum_(3), {1, 0, 1, 0}, 0)
                    .reshape({-1});
  }
  const at::TensorOptions index = images.options().dtype(at::kLong);
  const at::Tensor image = at::arange(images.size(0), index).repeat_interleave(samples);
  plane_ = (image.unsqueeze(1) * channels_ + at::arange(channels_, index))
               .view({rows_, channels_, 1, 1});
  steps_ = at::arange(patch, index);
}

at::Tensor RetinaSource::Glimpse(const at::Tensor& locations) const {
  TORCH_CHECK(locations.dim() == 2 && locations.size(0) == rows_ && locations.size(1) == 2,
              "Retina: locations must be [batch * samples, 2] = [", rows_, ", 2], got ",
              shape_string(locations.sizes()));
  TORCH_CHECK(locations.is_floating_point(), "Retina: locations must be floating point, got ",
              locations.scalar_type());
  // Out-of-range locations are clipped to the image; NaN has no pixel. (The
  // rows are listed only on failure: a glimpse is on the training's hot path.)
  const at::Tensor nan = at::isnan(locations.detach()).any(1);
  if (nan.any().item<bool>()) {
    const at::Tensor rows = nan.nonzero();
    TORCH_CHECK(false, "Retina: locations must not be NaN, got NaN in ", rows.size(0), " of ",
                rows_, " rows (first: row ", rows[0][0].item<int64_t>(), ")");
  }
  const int64_t n = rows_, hp = height_ + 2 * pad_, wp = width_ + 2 * pad_;
  const at::Tensor centre = LocationPixels(locations.detach(), height_, width_) + pad_;  // [N, 2]
  std::vector<at::Tensor> out;
  for (int64_t s = 0; s < scales_; ++s) {
    const int64_t k = int64_t{1} << s, side = patch_ << s;
    // Top-left pixel of each pooled block: start + i * k.
    const at::Tensor offsets = steps_ * k - side / 2;                    // [patch]
    const at::Tensor rows = (centre.select(1, 0).unsqueeze(1) + offsets)  // [N, 1, patch, 1]
                                .view({n, 1, patch_, 1});
    const at::Tensor cols = (centre.select(1, 1).unsqueeze(1) + offsets).view({n, 1, 1, patch_});
    const auto read = [&](const at::Tensor& flat, int64_t width, int64_t plane_size,
                          int64_t dy, int64_t dx) {
      const at::Tensor idx = plane_ * plane_size + (rows + dy) * width + (cols + dx);
      return flat.index_select(0, idx.reshape({-1})).view({n, channels_, patch_, patch_});
    };
    if (s == 0) {
      out.push_back(read(padded_, wp, hp * wp, 0, 0));
      continue;
    }
    // The integral image's planes are (hp + 1) x (wp + 1).
    const int64_t w1 = wp + 1, size1 = (hp + 1) * (wp + 1);
    const at::Tensor sums = read(integral_, w1, size1, k, k) - read(integral_, w1, size1, 0, k) -
                            read(integral_, w1, size1, k, 0) + read(integral_, w1, size1, 0, 0);
    out.push_back((sums / double(k * k)).to(padded_.scalar_type()));
  }
  return at::cat(out, 1);
}

at::Tensor Retina(const at::Tensor& images, const at::Tensor& locations, int64_t patch,
                  int64_t scales) {
  return RetinaSource(images, patch, scales).Glimpse(locations);
}

RamImpl::RamImpl(RamOptions options_) : options(std::move(options_)) {
  const char* op = "Ram";
  const RamOptions& o = options;
  TORCH_CHECK(o.glimpses() >= 1, op, ": glimpses must be >= 1, got ", o.glimpses());
  TORCH_CHECK(o.patch() >= 1 && o.scales() >= 1, op, ": patch and scales must be >= 1, got ",
              o.patch(), " and ", o.scales());
  TORCH_CHECK(o.location_std() > 0, op, ": location_std must be > 0, got ", o.location_std());
  TORCH_CHECK(o.classes() >= 2, op, ": classes must be >= 2, got ", o.classes());
  const int64_t retina = o.scales() * o.channels() * o.patch() * o.patch();
  glimpse_patch = register_module("glimpse_patch", Dense(retina, o.glimpse_hidden()));
  glimpse_location = register_module("glimpse_location", Dense(2, o.glimpse_hidden()));
  glimpse_what = register_module("glimpse_what", Dense(o.glimpse_hidden(), o.glimpse_out()));
  glimpse_where = register_module("glimpse_where", Dense(o.glimpse_hidden(), o.glimpse_out()));
  core_hidden = register_module("core_hidden", Dense(o.hidden(), o.hidden()));
  core_glimpse = register_module("core_glimpse", Dense(o.glimpse_out(), o.hidden()));
  location = register_module("location", Dense(o.hidden(), 2));
  baseline = register_module("baseline", Dense(o.hidden(), 1));
  classifier = register_module("classifier", Dense(o.hidden(), o.classes()));
  TORCH_CHECK(o.policy() == "head" || o.policy() == "all", op,
              ": policy must be head or all, got '", o.policy(), "'");
  TORCH_CHECK(o.init() == "irnn" || o.init() == "default", op,
              ": init must be irnn or default, got '", o.init(), "'");
  if (o.init() == "irnn") {
    // LibTorch's default divides the second moment by about 6 per ReLU
    // layer, so the core forgets a glimpse within a step or two; He keeps
    // it and the identity carries h_{t-1} over unchanged.
    at::NoGradGuard no_grad;
    for (torch::nn::Linear* layer : {&glimpse_patch, &glimpse_location, &glimpse_what,
                                     &glimpse_where, &core_glimpse}) {
      torch::nn::init::kaiming_normal_((*layer)->weight, 0, torch::kFanIn, torch::kReLU);
      (*layer)->bias.zero_();
    }
    core_hidden->weight.copy_(at::eye(o.hidden()));
    core_hidden->bias.zero_();
  }
}

RamImpl::Output RamImpl::forward(const at::Tensor& images, int64_t samples) {
  return Run(images, samples, is_training(), c10::nullopt);
}

RamImpl::Output RamImpl::forward_sampled(const at::Tensor& images, int64_t samples,
                                         at::Generator generator) {
  TORCH_CHECK(generator.defined(), "Ram: forward_sampled needs a generator, got an undefined one");
  return Run(images, samples, true, generator);
}

RamImpl::Output RamImpl::Run(const at::Tensor& images, int64_t samples, bool sample,
                             c10::optional<at::Generator> generator) {
  const RamOptions& o = options;
  TORCH_CHECK(images.dim() == 4 && images.size(1) == o.channels() && images.size(2) == o.side() &&
                  images.size(3) == o.side(),
              "Ram: images must be [batch, ", o.channels(), ", ", o.side(), ", ", o.side(),
              "], got ", shape_string(images.sizes()));
  TORCH_CHECK(samples >= 1, "Ram: samples must be >= 1, got ", samples);
  const int64_t batch = images.size(0) * samples, steps = o.glimpses();
  const at::Tensor x = images.to(glimpse_patch->weight.scalar_type());
  // Padded images and block means once per forward; trajectory i reads image i / samples.
  const RetinaSource retina(x, o.patch(), o.scales(), samples);
  at::Tensor l = at::zeros({batch, 2}, x.options());
  at::Tensor h = at::zeros({batch, o.hidden()}, x.options());
  std::vector<at::Tensor> locations, log_probs, baselines;
  for (int64_t t = 0; t < steps; ++t) {
    locations.push_back(l);
    const at::Tensor patches = retina.Glimpse(l).reshape({batch, -1});
    const at::Tensor what = at::relu(glimpse_patch->forward(patches));
    const at::Tensor where = at::relu(glimpse_location->forward(l));
    const at::Tensor g = at::relu(glimpse_what->forward(what) + glimpse_where->forward(where));
    h = at::relu(core_hidden->forward(h) + core_glimpse->forward(g));
    if (t + 1 == steps) break;
    const at::Tensor hd = h.detach();
    const at::Tensor mean = at::tanh(location->forward(o.policy() == "all" ? h : hd));
    baselines.push_back(baseline->forward(hd).squeeze(1));
    if (sample) {
      // A generator's noise is drawn on its device, then moved.
      const at::Tensor noise =
          generator.has_value()
              ? at::randn(mean.sizes(), *generator, mean.options().device(generator->device()))
                    .to(mean.device())
              : at::randn_like(mean);
      l = mean.detach() + noise * o.location_std();
    } else {
      l = mean.detach();
    }
    log_probs.push_back(GaussianLogProb(l, mean, o.location_std()));
    l = l.clamp(-1, 1);
  }
  Output out;
  out.logits = classifier->forward(h);
  out.locations = at::stack(locations, 1);
  out.log_probs = steps > 1 ? at::stack(log_probs, 1) : at::zeros({batch, 0}, x.options());
  out.baselines = steps > 1 ? at::stack(baselines, 1) : at::zeros({batch, 0}, x.options());
  return out;
}

at::Tensor MeanProbabilityLogits(const at::Tensor& logits, int64_t samples) {
  TORCH_CHECK(logits.dim() == 2 && samples >= 1 && logits.size(0) % samples == 0,
              "MeanProbabilityLogits: logits must be [B * samples, classes] with samples >= 1, "
              "got ", shape_string(logits.sizes()), " and samples ", samples);
  return at::log_softmax(logits, 1)
      .view({logits.size(0) / samples, samples, logits.size(1)})
      .logsumexp(1)
      .sub(std::log(double(samples)));
}

at::Tensor GaussianLogProb(const at::Tensor& sample, const at::Tensor& mean, double std) {
  const double var = std * std;
  return -0.5 * (sample - mean).pow(2).sum(-1) / var -
         0.5 * double(sample.size(-1)) * std::log(2 * M_PI * var);
}

at::Tensor ReinforceLoss(const at::Tensor& log_probs, const at::Tensor& reward,
                         const at::Tensor& baselines) {
  const at::Tensor advantage = reward.unsqueeze(1) - baselines.detach();
  return -(log_probs * advantage).sum(1).mean();
}

RamLoss RamLosses(const RamImpl::Output& out, const at::Tensor& labels,
                  const RamLossOptions& o) {
  const char* op = "RamLosses";
  const int64_t batch = out.logits.size(0);
  TORCH_CHECK(labels.dim() == 1 && labels.size(0) == batch, op, ": labels must be [batch] = [",
              batch, "], got ", shape_string(labels.sizes()));
  TORCH_CHECK(o.reinforce_weight() >= 0 && std::isfinite(o.reinforce_weight()), op,
              ": reinforce_weight must be finite and >= 0, got ", o.reinforce_weight());
  TORCH_CHECK(o.samples() >= 1 && batch % o.samples() == 0, op,
              ": samples must be >= 1 and divide the batch (", batch, "), got ", o.samples());
  TORCH_CHECK(o.reward() == "correct" || o.reward() == "log_likelihood", op,
              ": reward must be correct or log_likelihood, got '", o.reward(), "'");
  RamLoss loss;
  const at::Tensor logits = out.logits.detach();
  loss.reward = o.reward() == "correct"
                    ? (logits.argmax(1) == labels).to(out.logits.scalar_type())
                    : at::log_softmax(logits, 1).gather(1, labels.unsqueeze(1)).squeeze(1);
  loss.classification = at::cross_entropy_loss(out.logits, labels);
  at::Tensor reinforce_baseline = out.baselines;
  if (o.samples() > 1) {
    // Leave one out: (sum over the image's trajectories - own) / (M - 1).
    const int64_t m = o.samples();
    const at::Tensor r = loss.reward.view({batch / m, m});
    const at::Tensor others = (r.sum(1, /*keepdim=*/true) - r) / double(m - 1);
    reinforce_baseline = others.reshape({batch, 1}).expand_as(out.log_probs);
  }
  loss.reinforce = ReinforceLoss(out.log_probs, loss.reward, reinforce_baseline);
  loss.baseline = (out.baselines - loss.reward.unsqueeze(1)).pow(2).sum(1).mean();
  loss.total = loss.classification + o.reinforce_weight() * loss.reinforce + loss.baseline;
  return loss;
}

}  // namespace baselines
}  // namespace indexgrad
