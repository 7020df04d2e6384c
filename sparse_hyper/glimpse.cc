#include "sparse_hyper/glimpse.h"

#include <ATen/ATen.h>

#include "kernels/common/checks.h"
#include "kernels/sample_tuples/sample_tuples.h"
#include "kernels/spread_values/spread_values.h"
#include "sparse_hyper/parametrisation.h"

namespace indexgrad {
namespace sparse_hyper {
namespace {

void CheckOptions(const GlimpseOptions& o) {
  const char* op = "GlimpseLayer";
  TORCH_CHECK(o.glimpses() >= 1, op, ": glimpses must be >= 1, got ", o.glimpses());
  TORCH_CHECK(o.size() >= 1, op, ": size (k of a k x k glimpse) must be >= 1, got ",
              o.size());
  TORCH_CHECK(o.num_global() >= 0 && o.num_local() >= 0, op,
              ": num_global and num_local must be >= 0, got ", o.num_global(), " and ",
              o.num_local());
  TORCH_CHECK(o.region().size() == 2 && o.region()[0] >= 1 && o.region()[1] >= 1, op,
              ": region must be two sizes >= 1 (height, width), got ", o.region().size(),
              " entries");
  TORCH_CHECK(o.variance_scale() > 0, op, ": variance_scale must be > 0, got ",
              o.variance_scale());
  TORCH_CHECK(o.min_variance() >= 0, op, ": min_variance must be >= 0, got ",
              o.min_variance());
  TORCH_CHECK(o.tolerance() >= 0 && o.tolerance() < 1, op,
              ": tolerance must be in [0, 1), got ", o.tolerance());
  TORCH_CHECK(o.eval_samples() >= 0, op, ": eval_samples must be >= 0, got ",
              o.eval_samples());
}

// Evaluation draws' seeds: far above any training step's.
constexpr int64_t kEvalSeedOffset = int64_t{1} << 40;

}  // namespace

at::Tensor GlimpseBoxes(const at::Tensor& raw_boxes, int64_t height, int64_t width) {
  const at::Tensor scale =
      at::tensor({double(height - 1), double(width - 1), double(height - 1), double(width - 1)},
                 raw_boxes.options());
  return at::sigmoid(raw_boxes) * scale;
}

at::Tensor GlimpsePositions(const at::Tensor& raw_boxes, int64_t k, int64_t height,
                            int64_t width) {
  const int64_t batch = raw_boxes.size(0), g = raw_boxes.size(1);
  const at::Tensor corners = GlimpseBoxes(raw_boxes, height, width);  // [B, g, 4]
  // Fractions i / (k - 1) (k = 1: the box's centre).
  const at::Tensor t = k == 1 ? at::full({1}, 0.5, raw_boxes.options())
                              : at::arange(k, raw_boxes.options()) / double(k - 1);
  const at::Tensor y0 = corners.select(2, 0).unsqueeze(-1), x0 = corners.select(2, 1).unsqueeze(-1);
  const at::Tensor y1 = corners.select(2, 2).unsqueeze(-1), x1 = corners.select(2, 3).unsqueeze(-1);
  const at::Tensor ys = y0 + (y1 - y0) * t;  // [B, g, k]
  const at::Tensor xs = x0 + (x1 - x0) * t;
  return at::stack({ys.unsqueeze(3).expand({batch, g, k, k}),
                    xs.unsqueeze(2).expand({batch, g, k, k})},
                   -1)
      .reshape({batch, g * k * k, 2});
}

at::Tensor SampledGather(const at::Tensor& image, const at::Tensor& positions,
                         const at::Tensor& variances, const at::Tensor& values,
                         const GlimpseOptions& o, int64_t seed) {
  const int64_t batch = image.size(0), channels = image.size(1), h = image.size(2),
                w = image.size(3), k = positions.size(1);
  const at::Tensor points =  // [B, K, S, 2]
      sample_tuples(positions.detach(), {h, w}, o.num_global(), o.num_local(), o.region(), seed);
  const int64_t s = points.size(2);
  const at::Tensor weights =  // [B, K, S]: proportions times the value
      spread_values(points, positions, variances, values, /*chunk_size=*/1, o.tolerance());
  const at::Tensor flat = (points.select(3, 0) * w + points.select(3, 1)).view({batch, 1, k * s});
  const at::Tensor read = image.reshape({batch, channels, h * w})
                              .gather(2, flat.expand({batch, channels, k * s}))
                              .view({batch, channels, k, s});
  return (read * weights.unsqueeze(1)).sum(3);
}

GlimpseLayerImpl::GlimpseLayerImpl(GlimpseOptions options_) : options(std::move(options_)) {
  CheckOptions(options);
  raw_variance = register_parameter("raw_variance", at::zeros({options.glimpses()}));
  value = register_parameter("value", at::ones({options.glimpses()}));
  step = register_buffer("step", at::zeros({}, at::kLong));
}

at::Tensor GlimpseLayerImpl::forward(const at::Tensor& image, const at::Tensor& raw_boxes) {
  const char* op = "GlimpseLayer";
  const int64_t g = options.glimpses(), k = options.size();
  TORCH_CHECK(image.dim() == 4, op, ": image must be [batch, channels, height, width], got ",
              shape_string(image.sizes()));
  TORCH_CHECK(image.size(2) >= 1 && image.size(3) >= 1, op,
              ": image height and width must be >= 1, got ", shape_string(image.sizes()));
  TORCH_CHECK(raw_boxes.dim() == 3 && raw_boxes.size(0) == image.size(0) &&
                  raw_boxes.size(1) == g && raw_boxes.size(2) == 4,
              op, ": raw_boxes must be [batch, glimpses, 4] = [", image.size(0), ", ", g,
              ", 4], got ", shape_string(raw_boxes.sizes()));
  TORCH_CHECK(at::isfinite(raw_boxes).all().item<bool>(), op,
              ": raw_boxes holds NaN or infinite values");
  const int64_t batch = image.size(0), channels = image.size(1), h = image.size(2),
                w = image.size(3);
  const at::Tensor boxes = raw_boxes.to(value.scalar_type());
  const at::Tensor x = image.to(value.scalar_type());
  const at::Tensor positions = GlimpsePositions(boxes, k, h, w);  // [B, g k k, 2]
  // Every pixel of glimpse i shares its value and variance.
  const at::Tensor per_glimpse_value =
      value.view({1, g, 1}).expand({batch, g, k * k}).reshape({batch, g * k * k});
  at::Tensor out;  // [B, C, g k k]
  if (!is_training() && options.eval_samples() == 0) {
    const at::Tensor p = RoundHalfUp(positions);
    const at::Tensor flat = (p.select(2, 0) * w + p.select(2, 1)).view({batch, 1, -1});
    out = x.reshape({batch, channels, h * w}).gather(2, flat.expand({batch, channels, g * k * k})) *
          per_glimpse_value.unsqueeze(1);
  } else {
    const at::Tensor size = at::tensor({double(h), double(w)}, value.options());
    const at::Tensor variance =  // [g, 2]
        VariancesFromRaw(raw_variance, size, options.variance_scale(), options.min_variance());
    const at::Tensor per_glimpse_variance =
        variance.view({1, g, 1, 2}).expand({batch, g, k * k, 2}).reshape({batch, g * k * k, 2});
    auto draw = [&](int64_t stream) {
      return SampledGather(x, positions, per_glimpse_variance, per_glimpse_value, options,
                           DrawSeed(options.seed(), stream));
    };
    if (is_training()) {
      out = draw(step.item<int64_t>());
      step.add_(1);
    } else {
      const int64_t n = options.eval_samples();
      out = draw(kEvalSeedOffset);
      for (int64_t i = 1; i < n; ++i) out = out + draw(kEvalSeedOffset + i);
      if (n > 1) out = out / double(n);
    }
  }
  return out.view({batch, channels, g, k, k}).permute({0, 2, 1, 3, 4});
}

}  // namespace sparse_hyper
}  // namespace indexgrad
