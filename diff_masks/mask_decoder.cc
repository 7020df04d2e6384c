#include "diff_masks/mask_decoder.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/linear.h>
#include <torch/serialize/archive.h>

#include <cmath>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace indexgrad {
namespace diff_masks {

namespace {

constexpr char kOptionsKey[] = "indexgrad_mask_decoder_options";

at::Tensor OptionsTensor(const MaskDecoderOptions& o, int64_t frequencies) {
  return at::tensor({o.height(), o.width(), o.hidden(), o.blocks(), frequencies},
                    at::kLong);
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
  int64_t in = 2 + 4 * frequencies_;
  for (int64_t b = 0; b <= options.blocks(); ++b) {
    net->push_back(nn::Linear(in, h));
    net->push_back(nn::BatchNorm1d(h));
    net->push_back(nn::PReLU());
    in = h;
  }
  net->push_back(nn::Linear(h, options.height() * options.width()));
  network = register_module("network", net);
}

at::Tensor MaskDecoderImpl::Encode(const at::Tensor& coords) const {
  CheckCoords(coords, 2, "MaskDecoder::Encode");
  // Coordinates in pixel units, then angles 2 pi x / 2^j, j = 1..f.
  const at::Tensor scale = at::tensor(
      {static_cast<double>(options.height() - 1), static_cast<double>(options.width() - 1)},
      coords.options());
  const at::Tensor pixels = (coords * scale).unsqueeze(-1);  // [N, 2, 1]
  const at::Tensor periods =
      at::pow(2.0, at::arange(1, frequencies_ + 1, coords.options()));  // [f]
  const at::Tensor angles = (pixels * (2 * M_PI) / periods).flatten(1);   // [N, 2f]
  return at::cat({coords, at::sin(angles), at::cos(angles)}, 1);        // [N, 2 + 4f]
}

at::Tensor MaskDecoderImpl::PointLogits(const at::Tensor& coords) {
  return network->forward(Encode(coords));  // [N, H * W]
}

at::Tensor MaskDecoderImpl::Render(const at::Tensor& coords, double temperature) {
  CheckCoords(coords, 3, "MaskDecoder::Render");
  TORCH_CHECK(temperature > 0 && std::isfinite(temperature),
              "MaskDecoder::Render: temperature must be finite and > 0, got ", temperature);
  const int64_t b = coords.size(0), k = coords.size(1);
  TORCH_CHECK(k >= 1, "MaskDecoder::Render: need at least one point, got K = 0");
  const at::Tensor logits =
      PointLogits(coords.reshape({b * k, 2})).view({b, k, -1});  // [B, K, H*W]
  // log P(pixel off) = sum_k log(1 - sigmoid(l)) = sum_k logsigmoid(-l).
  const at::Tensor log_off = at::log_sigmoid(logits / -temperature).sum(1);   // [B, H*W]
  return (-at::expm1(log_off)).view({b, options.height(), options.width()});
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
  const at::Tensor param = decoder.network->parameters().front();
  const at::Tensor coords = at::rand({batch, 1, 2}, param.options());
  const at::Tensor mask =
      MasksOfCoordinates(coords, decoder.options.height(), decoder.options.width())
          .view({batch, -1});
  const at::Tensor logits = decoder.PointLogits(coords.view({batch, 2}));
  const at::Tensor loss =
      at::binary_cross_entropy_with_logits(logits, mask, {}, {}, at::Reduction::Sum) /
      batch;
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
  const at::Tensor mask = decoder.Render(coords).gt(0.5);
  const at::Tensor inter = at::logical_and(mask, target).flatten(1).sum(1);
  const at::Tensor uni = at::logical_or(mask, target).flatten(1).sum(1);
  MaskDecoderScores s;
  s.iou = (inter.to(at::kDouble) / uni.to(at::kDouble)).mean().item<double>();
  const at::Tensor flat = coords.view({-1, 2});
  const at::Tensor pixel = MasksOfCoordinates(flat.unsqueeze(1), h, w).view({flat.size(0), -1}).argmax(1);
  s.pixel_accuracy =
      decoder.PointLogits(flat).argmax(1).eq(pixel).to(at::kDouble).mean().item<double>();
  decoder.train(was_training);
  return s;
}

absl::Status SaveMaskDecoder(MaskDecoderImpl& decoder, const std::string& path) {
  try {
    torch::serialize::OutputArchive archive;
    archive.write(kOptionsKey, OptionsTensor(decoder.options, decoder.frequencies()),
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
    const at::Tensor want = OptionsTensor(expected, decoder->frequencies());
    if (!saved.equal(want)) {
      auto v = [](const at::Tensor& t) {
        auto a = t.accessor<int64_t, 1>();
        return absl::StrCat("height ", a[0], ", width ", a[1], ", hidden ", a[2],
                            ", blocks ", a[3], ", frequencies ", a[4]);
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
