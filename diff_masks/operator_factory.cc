#include "diff_masks/operator_factory.h"

#include <c10/util/Exception.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace indexgrad {
namespace diff_masks {

MaskOperatorFactory::MaskOperatorFactory() {
  Add("gaussian", [](int64_t height, int64_t width, int64_t k,
                     const OperatorSettings& s) {
    return std::shared_ptr<MaskOperator>(
        GaussianMaskOperator(GaussianMaskOptions(height, width, k)
                                 .stddev_start(s.stddev_start)
                                 .stddev_end(s.stddev_end)
                                 .anneal_fraction(s.stddev_anneal_fraction)
                                 .rescue_every(s.rescue_every)
                                 .rescue_steps(s.rescue_steps)
                                 .rescue_stddev(s.rescue_stddev)
                                 .rescue_peak(s.rescue_peak)
                                 .lr_end(s.lr_end)
                                 .adam_eps(s.point_eps))
            .ptr());
  });
  for (bool network : {false, true}) {
    Add(network ? "gumbel_net" : "gumbel",
        [network](int64_t height, int64_t width, int64_t k, const OperatorSettings& s) {
          return std::shared_ptr<MaskOperator>(
              GumbelMaskOperator(GumbelMaskOptions(height, width, k)
                                     .network(network)
                                     .temperature(s.temperature)
                                     .noise_fraction(s.noise_fraction)
                                     .clamp(network)
                                     .endgame(!network && s.gumbel_endgame)
                                     .endgame_lr(s.gumbel_endgame_lr)
                                     .cosine_lr(!network && s.gumbel_cosine))
                  .ptr());
        });
  }
  Add("mlp", [](int64_t height, int64_t width, int64_t k,
                const OperatorSettings& s) {
    TORCH_CHECK(!s.decoder.is_empty(),
                "MlpMaskOperator: needs a trained decoder (OperatorSettings::"
                "decoder; experiments load or train one, see mask_decoder.h)");
    return std::shared_ptr<MaskOperator>(
        MlpMaskOperator(MlpMaskOptions(height, width, k)
                            .stddev_start(s.stddev_start)
                            .stddev_end(s.stddev_end)
                            .anneal_fraction(s.stddev_anneal_fraction)
                            .rescue_every(s.rescue_every)
                            .rescue_steps(s.rescue_steps)
                            .rescue_stddev(s.rescue_stddev)
                            .rescue_peak(s.rescue_peak)
                            .adam_eps(s.point_eps),
                        s.decoder)
            .ptr());
  });
}

void MaskOperatorFactory::Add(const std::string& name, OperatorMaker make) {
  makers_[name] = std::move(make);
}

std::vector<std::string> MaskOperatorFactory::Names() const {
  std::vector<std::string> names;
  for (const auto& entry : makers_) names.push_back(entry.first);
  return names;
}

absl::StatusOr<std::shared_ptr<MaskOperator>> MaskOperatorFactory::Make(
    const std::string& name, int64_t height, int64_t width, int64_t k,
    const OperatorSettings& settings) const {
  auto it = makers_.find(name);
  if (it == makers_.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown mask operator '", name, "' (known: ",
                     absl::StrJoin(Names(), ", "), ")"));
  }
  try {
    return it->second(height, width, k, settings);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(e.what_without_backtrace());
  }
}

}  // namespace diff_masks
}  // namespace indexgrad
