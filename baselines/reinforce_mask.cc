#include "baselines/reinforce_mask.h"

#include <ATen/ATen.h>

#include "baselines/moving_baseline.h"
#include "kernels/common/checks.h"

namespace indexgrad {
namespace baselines {

ReinforceMaskOperatorImpl::ReinforceMaskOperatorImpl(ReinforceMaskOptions options_)
    : options(options_) {
  const char* op = "ReinforceMaskOperator";
  TORCH_CHECK(options.height() >= 1 && options.width() >= 1, op,
              ": height and width must be positive, got ", options.height(),
              " x ", options.width());
  TORCH_CHECK(options.k() >= 1, op, ": k must be >= 1, got ", options.k());
  TORCH_CHECK(options.baseline_decay() >= 0 && options.baseline_decay() < 1,
              op, ": baseline_decay must be in [0, 1), got ",
              options.baseline_decay());
  logits = register_parameter(
      "logits", at::zeros({options.k(), options.height() * options.width()}));
  baseline = register_buffer("baseline", at::zeros({}));
  baseline_initialised = register_buffer("baseline_initialised", at::zeros({}));
}

at::Tensor ReinforceMaskOperatorImpl::Mask() {
  const at::Tensor log_p = at::log_softmax(logits, 1);  // [k, H * W]
  at::Tensor picks;                                      // [k, 1]
  {
    at::NoGradGuard no_grad;
    picks = at::multinomial(log_p.exp(), 1);
  }
  last_log_prob_ = log_p.gather(1, picks).sum();
  at::Tensor mask = at::zeros({options.height() * options.width()},
                              logits.options().requires_grad(false));
  mask.index_fill_(0, picks.view(-1), 1.0);
  return mask.view({options.height(), options.width()});
}

at::Tensor ReinforceMaskOperatorImpl::ScoreSurrogate(const at::Tensor& loss) {
  TORCH_CHECK(last_log_prob_.defined(),
              "ReinforceMaskOperator::ScoreSurrogate: call Mask() first");
  TORCH_CHECK(loss.numel() == 1,
              "ReinforceMaskOperator::ScoreSurrogate: loss must be a scalar, got ",
              shape_string(loss.sizes()));
  const double l = loss.item<double>();
  const double b = options.use_baseline()
                       ? UpdateMovingBaseline(baseline, baseline_initialised, l,
                                              options.baseline_decay())
                       : 0.0;
  at::Tensor surrogate = (l - b) * last_log_prob_;
  last_log_prob_ = at::Tensor();
  return surrogate;
}

at::Tensor ReinforceMaskOperatorImpl::Indices() {
  return diff_masks::PixelsOfFlat(logits.detach().argmax(1), options.width());
}

void AddReinforceMaskOperator(diff_masks::MaskOperatorFactory& factory) {
  factory.Add("reinforce", [](int64_t height, int64_t width, int64_t k,
                              const diff_masks::OperatorSettings&) {
    return std::shared_ptr<diff_masks::MaskOperator>(
        ReinforceMaskOperator(ReinforceMaskOptions(height, width, k)).ptr());
  });
}

}  // namespace baselines
}  // namespace indexgrad
