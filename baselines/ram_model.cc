#include "baselines/ram_model.h"

#include <ATen/CPUGeneratorImpl.h>

#include "kernels/common/schedules.h"

namespace indexgrad {
namespace baselines {

RamModel::RamModel(const RamOptions& options, const RamLossOptions& loss, double std_end,
                   int64_t eval_samples)
    : net(register_module("net", Ram(options))),
      loss_(loss),
      eval_samples_(eval_samples),
      std_start_(options.location_std()),
      std_end_(std_end > 0 ? std_end : options.location_std()) {}

void RamModel::SetProgress(int64_t step, int64_t total) {
  net->options.location_std(GeometricAnneal(std_start_, std_end_, /*fraction=*/1.0, step, total));
}

std::pair<at::Tensor, at::Tensor> RamModel::Loss(const at::Tensor& images, const at::Tensor&,
                                                 const at::Tensor& labels) {
  // m trajectories of each image, consecutive.
  const int64_t m = loss_.samples();
  const RamImpl::Output out = net->forward(images, m);
  return {RamLosses(out, labels.repeat_interleave(m, 0), loss_).total,
          out.logits.view({images.size(0), m, -1}).select(1, 0)};
}

at::Tensor RamModel::Logits(const at::Tensor& images, const at::Tensor&) {
  if (eval_samples_ == 1) return net->forward(images).logits;
  // log of the mean class probabilities over eval_samples_ trajectories.
  at::Generator gen = at::detail::createCPUGenerator(kEvalSeed);
  return MeanProbabilityLogits(net->forward_sampled(images, eval_samples_, gen).logits,
                               eval_samples_);
}

std::pair<at::Tensor, at::Tensor> RamModel::Glimpses(const at::Tensor& images,
                                                     const at::Tensor&) {
  const RamImpl::Output out = net->forward(images);
  const int64_t b = images.size(0), t = out.locations.size(1), p = net->options.patch();
  const at::Tensor loc = out.locations.reshape({b * t, 2});
  const at::Tensor top_left =  // [b t, 2], as the retina centres its patches
      LocationPixels(loc, images.size(2), images.size(3)).to(loc.scalar_type()) - p / 2;
  const at::Tensor boxes = at::cat({top_left, top_left + (p - 1)}, 1).view({b, t, 4});
  const at::Tensor repeated = images.unsqueeze(1).expand({b, t, -1, -1, -1})
                                  .reshape({b * t, images.size(1), images.size(2), images.size(3)});
  const at::Tensor patches = Retina(repeated, loc, p, 1).view({b, t, -1});
  return {boxes, patches};
}

}  // namespace baselines
}  // namespace indexgrad
