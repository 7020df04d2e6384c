#include "diff_masks/mask_decoder.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/linear.h>
#include <torch/serialize/archive.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "diff_masks/pixel_masses.h"

namespace indexgrad {
namespace diff_masks {

namespace {

constexpr char kOptionsKey[] = "indexgrad_mask_decoder_options";

// Format 2: the pixel-distribution decoder (format 1, five int64 values
// without a version, rendered each point's own pixel).
constexpr double kFormat = 2;

at::Tensor OptionsTensor(const MaskDecoderOptions& o, int64_t frequencies, double max_stddev) {
  return at::tensor({kFormat, double(o.height()), double(o.width()), double(o.hidden()),
                     double(o.blocks()), double(frequencies), o.min_stddev(), max_stddev},
                    at::kDouble);
}

void CheckCoords(const at::Tensor& coords, int64_t dim, const char* fn) {
  TORCH_CHECK(coords.dim() == dim && coords.size(-1) == 2, fn, ": coords must be [",
              dim == 2 ? "N" : "B, K", ", 2], got ", coords.sizes());
  TORCH_CHECK(at::isFloatingType(coords.scalar_type()), fn,
              ": coords must be floating point, got ", coords.scalar_type());
}

}  // namespace

MaskDecoderImpl::MaskDecoderImpl(MaskDecoderOptions options_) : options(options_) {
  const char* op = "MaskDecoder";
  TORCH_CHECK(options.height() >= 1 && options.width() >= 1, op,
              ": height and width must be positive, got ", options.height(), " x ",
              options.width());
  TORCH_CHECK(options.hidden() >= 1, op, ": hidden must be >= 1, got ", options.hidden());
  TORCH_CHECK(options.blocks() >= 0, op, ": blocks must be >= 0, got ", options.blocks());
  TORCH_CHECK(options.frequencies() >= -1 && options.frequencies() <= 30, op,
              ": frequencies must be -1 (automatic) or in [0, 30], got ",
              options.frequencies());
  TORCH_CHECK(options.min_stddev() > 0 && options.max_stddev() >= 0, op,
              ": min_stddev must be > 0 and max_stddev >= 0, got ", options.min_stddev(),
              " and ", options.max_stddev());
  max_stddev_ = options.max_stddev() > 0
                    ? options.max_stddev()
                    : double(std::max(options.height(), options.width())) / 4;
  TORCH_CHECK(max_stddev_ >= options.min_stddev(), op, ": max_stddev (", max_stddev_,
              ") must be >= min_stddev (", options.min_stddev(), ")");
  frequencies_ = options.frequencies();
  if (frequencies_ < 0) {  // smallest f with 2^f >= 2 max(H, W)
    frequencies_ = 1;
    while ((int64_t{1} << frequencies_) < 2 * std::max(options.height(), options.width())) {
      ++frequencies_;
    }
  }
  namespace nn = torch::nn;
  const int64_t h = options.hidden();
  nn::Sequential net;
  int64_t in = 2 + 4 * frequencies_ + 2;
  for (int64_t b = 0; b <= options.blocks(); ++b) {
    net->push_back(nn::Linear(in, h));
    net->push_back(nn::BatchNorm1d(h));
    net->push_back(nn::PReLU());
    in = h;
  }
  net->push_back(nn::Linear(h, options.height() * options.width()));
  network = register_module("network", net);
}

at::Tensor MaskDecoderImpl::Encode(const at::Tensor& coords, const at::Tensor& stddevs) const {
  CheckCoords(coords, 2, "MaskDecoder::Encode");
  TORCH_CHECK(stddevs.dim() == 1 && stddevs.size(0) == coords.size(0),
              "MaskDecoder::Encode: stddevs must be [", coords.size(0), "], got ",
              stddevs.sizes());
  // Coordinates in pixel units, then angles 2 pi x / 2^j, j = 1..f.
  const at::Tensor scale = at::tensor(
      {static_cast<double>(options.height() - 1), static_cast<double>(options.width() - 1)},
      coords.options());
  const at::Tensor pixels = (coords * scale).unsqueeze(-1);  // [N, 2, 1]
  const at::Tensor periods =
      at::pow(2.0, at::arange(1, frequencies_ + 1, coords.options()));  // [f]
  const at::Tensor angles = (pixels * (2 * M_PI) / periods).flatten(1);   // [N, 2f]
  const at::Tensor s = stddevs.to(coords.scalar_type()).unsqueeze(1);
  return at::cat({coords, at::sin(angles), at::cos(angles), at::log(s),
                  s / double(std::max(options.height(), options.width()))},
                 1);  // [N, 2 + 4f + 2]
}

at::Tensor MaskDecoderImpl::PointLogits(const at::Tensor& coords, const at::Tensor& stddevs) {
  return network->forward(Encode(coords, stddevs));  // [N, H * W]
}

at::Tensor MaskDecoderImpl::Render(const at::Tensor& coords, double stddev) {
  CheckCoords(coords, 3, "MaskDecoder::Render");
  TORCH_CHECK(stddev >= options.min_stddev() * (1 - 1e-9) && stddev <= max_stddev_ * (1 + 1e-9),
              "MaskDecoder::Render: stddev must be within the trained range [",
              options.min_stddev(), ", ", max_stddev_, "], got ", stddev);
  const int64_t b = coords.size(0), k = coords.size(1);
  TORCH_CHECK(k >= 1, "MaskDecoder::Render: need at least one point, got K = 0");
  const at::Tensor logits = PointLogits(coords.reshape({b * k, 2}),
                                        at::full({b * k}, stddev, coords.options()));
  return at::softmax(logits, 1).view({b, k, -1}).sum(1).view({b, options.height(), options.width()});
}

at::Tensor MasksOfCoordinates(const at::Tensor& coords, int64_t height, int64_t width) {
  CheckCoords(coords, 3, "MasksOfCoordinates");
  const at::Tensor r =
      at::floor(coords.select(-1, 0) * (height - 1) + 0.5).clamp(0, height - 1).to(at::kLong);
  const at::Tensor c =
      at::floor(coords.select(-1, 1) * (width - 1) + 0.5).clamp(0, width - 1).to(at::kLong);
  at::Tensor masks = at::zeros({coords.size(0), height * width}, coords.options());
  masks.scatter_(1, r * width + c, 1.0);
  return masks.view({coords.size(0), height, width});
}

double TrainMaskDecoderStep(MaskDecoderImpl& decoder, torch::optim::Optimizer& optimizer,
                            int64_t batch) {
  TORCH_CHECK(batch >= 2, "TrainMaskDecoderStep: batch must be >= 2 (BatchNorm), got ",
              batch);
  decoder.train();
  const int64_t h = decoder.options.height(), w = decoder.options.width();
  const at::Tensor param = decoder.network->parameters().front();
  const at::Tensor coords = at::rand({batch, 2}, param.options());
  const double lo = std::log(decoder.options.min_stddev()), hi = std::log(decoder.max_stddev());
  const at::Tensor stddevs = at::exp(at::rand({batch}, param.options()) * (hi - lo) + lo);
  const at::Tensor scale = at::tensor({double(h - 1), double(w - 1)}, param.options());
  const at::Tensor target = PointPixelMasses(coords * scale, stddevs, h, w);  // [batch, H*W]
  const at::Tensor log_p = at::log_softmax(decoder.PointLogits(coords, stddevs), 1);
  // KL(target || p) = sum t (log t - log p); 0 log 0 = 0.
  const at::Tensor log_t = at::log(target.clamp_min(1e-30));
  const at::Tensor loss = (target * (log_t - log_p)).sum(1).mean();
  optimizer.zero_grad();
  loss.backward();
  optimizer.step();
  return loss.item<double>();
}

MaskDecoderScores EvaluateMaskDecoder(MaskDecoderImpl& decoder, int64_t k, int64_t masks,
                                      uint64_t seed) {
  TORCH_CHECK(k >= 1 && masks >= 1, "EvaluateMaskDecoder: k and masks must be >= 1, got ",
              k, " and ", masks);
  at::NoGradGuard no_grad;
  const bool was_training = decoder.is_training();
  decoder.eval();
  const at::Tensor param = decoder.network->parameters().front();
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const at::Tensor coords =
      at::rand({masks, k, 2}, gen, at::TensorOptions().dtype(param.scalar_type()))
          .to(param.device());
  const int64_t h = decoder.options.height(), w = decoder.options.width();
  const at::Tensor target = MasksOfCoordinates(coords, h, w).gt(0.5);
  const double s_min = decoder.options.min_stddev();
  const at::Tensor mask = decoder.Render(coords, s_min).gt(0.5);
  const at::Tensor inter = at::logical_and(mask, target).flatten(1).sum(1);
  const at::Tensor uni = at::logical_or(mask, target).flatten(1).sum(1);
  MaskDecoderScores s;
  s.iou = (inter.to(at::kDouble) / uni.to(at::kDouble)).mean().item<double>();
  const at::Tensor flat = coords.view({-1, 2});
  const at::Tensor pixel = MasksOfCoordinates(flat.unsqueeze(1), h, w).view({flat.size(0), -1}).argmax(1);
  s.pixel_accuracy = decoder.PointLogits(flat, at::full({flat.size(0)}, s_min, flat.options()))
                         .argmax(1)
                         .eq(pixel)
                         .to(at::kDouble)
                         .mean()
                         .item<double>();
  decoder.train(was_training);
  return s;
}

absl::Status SaveMaskDecoder(MaskDecoderImpl& decoder, const std::string& path) {
  try {
    torch::serialize::OutputArchive archive;
    archive.write(kOptionsKey,
                  OptionsTensor(decoder.options, decoder.frequencies(), decoder.max_stddev()),
                  /*is_buffer=*/true);
    decoder.save(archive);
    archive.save_to(path);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("cannot write the mask decoder to ", path, ": ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::StatusOr<MaskDecoder> LoadMaskDecoder(const std::string& path,
                                            const MaskDecoderOptions& expected) {
  if (!std::ifstream(path).good()) {
    return absl::NotFoundError(absl::StrCat(
        "no mask decoder at ", path, "; train one with `bazel run "
        "//experiments:train_mask_decoder -- --size=", expected.height(), "`"));
  }
  MaskDecoder decoder(expected);
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    at::Tensor saved;
    if (!archive.try_read(kOptionsKey, saved, /*is_buffer=*/true)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " is not a mask decoder file (no options record)"));
    }
    if (saved.scalar_type() != at::kDouble || saved.numel() < 1 ||
        saved[0].item<double>() != kFormat) {
      return absl::InvalidArgumentError(absl::StrCat(
          "mask decoder ", path, " is of an older format (it rendered only each point's own "
          "pixel); delete it and train one with `bazel run //experiments:train_mask_decoder -- "
          "--size=", expected.height(), "`"));
    }
    const at::Tensor want = OptionsTensor(expected, decoder->frequencies(), decoder->max_stddev());
    if (!saved.equal(want)) {
      auto v = [](const at::Tensor& t) {
        auto a = t.accessor<double, 1>();
        return absl::StrCat("height ", a[1], ", width ", a[2], ", hidden ", a[3], ", blocks ",
                            a[4], ", frequencies ", a[5], ", stddev ", a[6], " to ", a[7]);
      };
      return absl::InvalidArgumentError(absl::StrCat(
          "mask decoder ", path, " was trained with ", v(saved), "; asked for ", v(want)));
    }
    decoder->load(archive);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the mask decoder ", path, ": ", e.what_without_backtrace()));
  }
  return decoder;
}

}  // namespace diff_masks
}  // namespace indexgrad
