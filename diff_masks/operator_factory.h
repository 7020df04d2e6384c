// Mask operators by name, for experiments, tests and users who pick one
// from a flag:
//
//   MaskOperatorFactory factory;           // gaussian, gumbel, gumbel_net, mlp
//   baselines::AddReinforceMaskOperator(factory);    // and reinforce
//   OperatorSettings settings;                       // defaults
//   absl::StatusOr<std::shared_ptr<MaskOperator>> op =
//       factory.Make("gaussian", 32, 32, /*k=*/512, settings);
//
// An unknown name is an error listing the known ones; invalid settings are
// errors naming the operator and the setting.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "diff_masks/mask_decoder.h"
#include "diff_masks/gaussian_mask.h"
#include "diff_masks/gumbel_mask.h"
#include "diff_masks/mask_operator.h"
#include "diff_masks/mlp_mask.h"

namespace indexgrad {
namespace diff_masks {

// The settings of every operator (each reads its own).
struct OperatorSettings {
  // gaussian and mlp (pixels): the standard deviation, annealed from
  // stddev_start (0: a quarter of the smaller side; mlp: the decoder's
  // maximum) to stddev_end over the first stddev_anneal_fraction of the
  // steps.
  double stddev_start = 0, stddev_end = 0.15, stddev_anneal_fraction = 0.4;
  // gaussian and mlp: rescue of stuck points (GaussianMaskOptions; every 0:
  // off).
  int64_t rescue_every = 25, rescue_steps = 100;
  double rescue_stddev = 0, rescue_peak = 0.5;  // rescue_stddev 0: stddev_start's
  // gumbel, gumbel_net (the paper's network): softmax temperature, share
  // of the steps over which the Gumbel noise fades.
  double temperature = 0.5, noise_fraction = 0.8;
  // gaussian: the learning rate falls with the stddev to lr_end
  // (GaussianMaskOptions::lr_end; 0: constant).
  double lr_end = 0;
  // gaussian and mlp: Adam's epsilon for the points (adam_eps).
  double point_eps = 1e-16;
  // gumbel (the table): GumbelMaskOptions::endgame, endgame_lr, cosine_lr.
  bool gumbel_endgame = true;
  double gumbel_endgame_lr = 0.05;
  bool gumbel_cosine = false;
  // mlp: the trained decoder (mask_decoder.h; required).
  MaskDecoder decoder{nullptr};
};

using OperatorMaker = std::function<std::shared_ptr<MaskOperator>(
    int64_t height, int64_t width, int64_t k, const OperatorSettings&)>;

class MaskOperatorFactory {
 public:
  MaskOperatorFactory();  // gaussian, gumbel, gumbel_net, mlp
  // Adds (or replaces) an operator; makers may throw c10::Error (TORCH_CHECK)
  // on bad settings, which Make returns as a status.
  void Add(const std::string& name, OperatorMaker make);
  bool Has(const std::string& name) const { return makers_.count(name) > 0; }
  std::vector<std::string> Names() const;  // sorted
  absl::StatusOr<std::shared_ptr<MaskOperator>> Make(
      const std::string& name, int64_t height, int64_t width, int64_t k,
      const OperatorSettings& settings) const;

 private:
  std::map<std::string, OperatorMaker> makers_;
};

}  // namespace diff_masks
}  // namespace indexgrad
