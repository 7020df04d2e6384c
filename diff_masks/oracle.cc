#include "diff_masks/oracle.h"

#include "absl/strings/str_cat.h"
#include "kernels/common/checks.h"

namespace indexgrad {
namespace diff_masks {

absl::StatusOr<TargetKind> ParseTargetKind(const std::string& name) {
  if (name == "left_half") return TargetKind::kLeftHalf;
  if (name == "random") return TargetKind::kRandomPixels;
  if (name == "disc") return TargetKind::kDisc;
  if (name == "digit") return TargetKind::kDigit;
  return absl::InvalidArgumentError(absl::StrCat(
      "target must be left_half, random, disc or digit, got '", name, "'"));
}

std::string TargetKindName(TargetKind kind) {
  switch (kind) {
    case TargetKind::kLeftHalf: return "left_half";
    case TargetKind::kRandomPixels: return "random";
    case TargetKind::kDisc: return "disc";
    case TargetKind::kDigit: return "digit";
  }
  return "?";
}

absl::StatusOr<MaskOracle> MaskOracle::Create(TargetKind kind, int64_t height,
                                              int64_t width, int64_t seed,
                                              int64_t num_pixels,
                                              const at::Tensor& digit) {
  if (height < 2 || width < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mask size must be at least 2 x 2, got ", height, " x ", width));
  }
  at::Tensor target = at::zeros({height, width});
  switch (kind) {
    case TargetKind::kLeftHalf:
      target.slice(1, 0, width / 2).fill_(1.0);
      break;
    case TargetKind::kRandomPixels: {
      if (num_pixels < 1 || num_pixels > height * width) {
        return absl::InvalidArgumentError(absl::StrCat(
            "num_pixels must be in [1, ", height * width, "], got ", num_pixels));
      }
      at::Generator gen = at::detail::createCPUGenerator(seed);
      const at::Tensor order = at::randperm(height * width, gen, at::kLong);
      target.view(-1).index_fill_(0, order.slice(0, 0, num_pixels), 1.0);
      break;
    }
    case TargetKind::kDisc: {
      const double r = std::min(height, width) / 4.0;
      const at::Tensor y = at::arange(height, at::kFloat).sub((height - 1) / 2.0);
      const at::Tensor x = at::arange(width, at::kFloat).sub((width - 1) / 2.0);
      target = (y.unsqueeze(1).pow(2) + x.unsqueeze(0).pow(2))
                   .le(r * r)
                   .to(at::kFloat);
      break;
    }
    case TargetKind::kDigit: {
      if (!digit.defined() || digit.dim() != 2 || digit.size(0) != 28 ||
          digit.size(1) != 28) {
        return absl::InvalidArgumentError(
            "a digit target needs a [28, 28] MNIST image");
      }
      if (height < 28 || width < 28) {
        return absl::InvalidArgumentError(absl::StrCat(
            "a digit target needs a mask of at least 28 x 28, got ", height,
            " x ", width));
      }
      const int64_t y0 = (height - 28) / 2, x0 = (width - 28) / 2;
      target.slice(0, y0, y0 + 28)
          .slice(1, x0, x0 + 28)
          .copy_(digit.gt(0.5).to(at::kFloat));
      break;
    }
  }
  const int64_t on = target.sum().item<int64_t>();
  if (on == 0) return absl::InvalidArgumentError("the target mask is empty");
  return MaskOracle(target, on);
}

absl::StatusOr<MaskOracle> MaskOracle::FromMask(const at::Tensor& mask,
                                                const std::string& what) {
  if (!mask.defined() || mask.dim() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": a mask must be a 2-D tensor [H, W], got ",
        mask.defined() ? shape_string(mask.sizes()) : std::string("none")));
  }
  if (mask.size(0) < 2 || mask.size(1) < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": mask size must be at least 2 x 2, got ", mask.size(0), " x ",
        mask.size(1)));
  }
  if (mask.is_complex()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": mask must be real, got ", mask.scalar_type()));
  }
  const at::Tensor m = mask.detach().cpu().to(at::kDouble);
  const at::Tensor bad = m.ne(0) & m.ne(1);  // NaN is bad too
  if (bad.any().item<bool>()) {
    const at::Tensor where = bad.nonzero()[0];
    const int64_t y = where[0].item<int64_t>(), x = where[1].item<int64_t>();
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": mask must be binary (every value 0 or 1), got ",
        m[y][x].item<double>(), " at (", y, ", ", x, ")"));
  }
  const int64_t on = m.sum().item<int64_t>();
  if (on == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": the mask is empty (no pixel is 1)"));
  }
  return MaskOracle(m.to(at::kFloat).contiguous(), on);
}

void MaskOracle::CheckMask(const char* method, const at::Tensor& mask) const {
  TORCH_CHECK(mask.dim() == 2 && mask.size(0) == height_ &&
                  mask.size(1) == width_,
              "MaskOracle::", method, ": mask must be [", height_, ", ", width_,
              "], got ", shape_string(mask.sizes()));
  TORCH_CHECK(mask.is_floating_point(), "MaskOracle::", method,
              ": mask must be floating point, got ", mask.scalar_type());
  TORCH_CHECK(!at::isnan(mask).any().item<bool>(), "MaskOracle::", method,
              ": mask contains NaN");
}

at::Tensor MaskOracle::Mse(const at::Tensor& mask) const {
  CheckMask("Mse", mask);
  return (mask - target_.to(mask.options())).pow(2).mean();
}

MaskScores MaskOracle::Score(const at::Tensor& mask) const {
  CheckMask("Score", mask);
  const at::Tensor on = mask.detach().cpu().gt(0.5);
  const at::Tensor truth = target_.gt(0.5);
  MaskScores s;
  const double inter = (on & truth).sum().item<double>();
  const double uni = (on | truth).sum().item<double>();
  s.iou = uni > 0 ? inter / uni : 1.0;
  s.accuracy = on.eq(truth).to(at::kFloat).mean().item<double>();
  return s;
}

double MaskOracle::IndexIoU(const at::Tensor& pixels) const {
  TORCH_CHECK(pixels.dim() == 2 && pixels.size(1) == 2 &&
                  pixels.scalar_type() == at::kLong,
              "MaskOracle::IndexIoU: pixels must be [K, 2] int64, got ",
              shape_string(pixels.sizes()), " ", pixels.scalar_type());
  const at::Tensor p = pixels.cpu();
  const at::Tensor rows = p.select(1, 0), cols = p.select(1, 1);
  const at::Tensor inside = rows.ge(0) & rows.lt(height_) & cols.ge(0) & cols.lt(width_);
  at::Tensor on = at::zeros({height_ * width_}, at::kBool);
  on.index_fill_(0, (rows * width_ + cols).masked_select(inside), true);
  const at::Tensor truth = target_.gt(0.5).view(-1);
  const double inter = (on & truth).sum().item<double>();
  const double uni = (on | truth).sum().item<double>();
  return uni > 0 ? inter / uni : 1.0;
}

at::Tensor TargetForFigures(const MaskOracle& oracle) {
  return oracle.target_.clone();
}

}  // namespace diff_masks
}  // namespace indexgrad
