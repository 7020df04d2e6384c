// The Recurrent Attention Model (ram.h) behind the attention experiment's
// model interface (sparse_hyper/attention_model.h): trained on RamLosses
// over `samples` trajectories per image, evaluated at the policy's means or
// as the mean class probabilities of several sampled trajectories, its
// location policy's std optionally annealed over the run.
//
//   RamModel ram(RamOptions().side(100).scales(4), RamLossOptions().samples(8),
//                /*std_end=*/0, /*eval_samples=*/8);
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <utility>

#include "baselines/ram.h"
#include "sparse_hyper/attention_model.h"

namespace indexgrad {
namespace baselines {

class RamModel : public sparse_hyper::AttentionModel {
 public:
  // std_end > 0: the policy's std falls geometrically from
  // options.location_std() to std_end over the run (SetProgress); 0:
  // constant. eval_samples > 1: Logits() averages the class probabilities
  // of that many trajectories, drawn from a generator seeded the same at
  // every call; 1: the policy's means.
  RamModel(const RamOptions& options, const RamLossOptions& loss, double std_end,
           int64_t eval_samples);
  void SetProgress(int64_t step, int64_t total) override;
  // The first of each image's `loss.samples()` trajectories gives the
  // returned logits.
  std::pair<at::Tensor, at::Tensor> Loss(const at::Tensor& images, const at::Tensor& positions,
                                         const at::Tensor& labels) override;
  at::Tensor Logits(const at::Tensor& images, const at::Tensor& positions) override;
  // The finest patch at each of the policy's mean locations, as a box and
  // its contents.
  std::pair<at::Tensor, at::Tensor> Glimpses(const at::Tensor& images,
                                             const at::Tensor& positions) override;
  Ram net;

 private:
  static constexpr uint64_t kEvalSeed = 20141210;
  RamLossOptions loss_;
  int64_t eval_samples_;
  double std_start_, std_end_;
};

}  // namespace baselines
}  // namespace indexgrad
