// The Recurrent Attention Model (Mnih et al. 2014), the attention baseline
// of Bloem et al. 2018 (Table 1: 8.11 % error on 100 x 100 cluttered MNIST
// with 8 glimpses).
//
// Per step t = 0 .. T-1, at location l_t in [-1, 1]^2 ((-1, -1) the top
// left pixel, (1, 1) the bottom right; l_0 = the centre):
//   retina   `scales` square patches centred at l_t, sides patch * 2^s,
//            each average-pooled to patch x patch (zeros outside the image)
//   glimpse  g_t = ReLU(A h_g + B h_l), h_g = ReLU(W_g patches),
//            h_l = ReLU(W_l l_t)                      (128, 128 -> 256 units)
//   core     h_t = ReLU(R h_{t-1} + G g_t), h_{-1} = 0          (256 units)
//   location mean_{t+1} = tanh(L h_t), l_{t+1} ~ N(mean_{t+1}, std^2 I),
//            clipped to [-1, 1] after its log-probability is taken (the
//            clipping is the environment's, not the policy's); the sample
//            carries no gradient
//   baseline b_t = B_t h_t (a learned reward predictor)
// and after the last step the class logits C h_{T-1}.
// The baseline head reads h_t detached (only the squared error trains it).
// The location head: with policy "head" it reads h_t detached too, so
// REINFORCE trains the location head alone; with policy "all" REINFORCE's
// gradient also flows through h_t into the core and glimpse networks (Mnih
// et al. train all parameters on the hybrid loss).
//
// Training (RamLosses): cross-entropy of the logits + REINFORCE on the
// locations with reward R = 1 for a correct class, 0 otherwise:
//   reinforce = -mean_b sum_t log pi(l_{t+1}) (R - b_t)   (b_t detached)
//   baseline  = mean_b sum_t (b_t - R)^2
//   total     = classification + reinforce_weight * reinforce + baseline
// Descending `reinforce` raises the log-probability of locations that led to
// a reward above the baseline (the sparse paper's own REINFORCE attention
// loss had this sign reversed; ram_test checks it). RamLossOptions: with M
// trajectories of each image in the batch, REINFORCE's baseline for one is
// the mean reward of the other M - 1 (leave one out; b_t is still trained),
// and the reward may be log p(label) instead of the 0/1 correctness.
// Evaluation: forward() in eval mode follows the policy's means;
// forward_sampled + MeanProbabilityLogits average the class probabilities
// of sampled trajectories (the ones training saw).
#pragma once

#include <ATen/core/Generator.h>
#include <c10/util/Optional.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <vector>

namespace indexgrad {
namespace baselines {

struct RamOptions {
  TORCH_ARG(int64_t, side) = 100;     // square input images
  TORCH_ARG(int64_t, channels) = 1;
  TORCH_ARG(int64_t, glimpses) = 8;   // T
  TORCH_ARG(int64_t, patch) = 12;
  TORCH_ARG(int64_t, scales) = 4;
  TORCH_ARG(int64_t, glimpse_hidden) = 128;
  TORCH_ARG(int64_t, glimpse_out) = 256;
  TORCH_ARG(int64_t, hidden) = 256;
  TORCH_ARG(double, location_std) = 0.1;  // of the Gaussian policy, in [-1, 1] units
  // "irnn": He initialisation (normal, fan-in) of the layers that feed a
  // ReLU, the core's recurrent matrix the identity (Le et al. 2015's IRNN),
  // zero biases; "default": LibTorch's (weight variance 1 / (3 fan_in)).
  TORCH_ARG(std::string, init) = "irnn";
  // What REINFORCE trains: "head" (the location head only) or "all" (also
  // the core and glimpse networks, through h_t).
  TORCH_ARG(std::string, policy) = "head";
  TORCH_ARG(int64_t, classes) = 10;
};

// The pixel (row, column) a location in [-1, 1]^2 points at (clipped to
// the image, round half up): locations [..., 2] -> int64 [..., 2].
at::Tensor LocationPixels(const at::Tensor& locations, int64_t height, int64_t width);

// images [B, C, H, W], locations [B, 2] (row, column) in [-1, 1] ->
// [B, scales * C, patch, patch]: scale s is the side patch * 2^s square
// centred at the location, average-pooled by 2^s; pixels outside the image
// read 0.
at::Tensor Retina(const at::Tensor& images, const at::Tensor& locations, int64_t patch,
                  int64_t scales);

// The retina over many glimpses of the same images: the images padded and
// their integral image computed once; then each glimpse reads patch^2
// pixels at scale 0 and 4 patch^2 integral-image corners per coarser scale
// (a block mean), not a crop of (patch 2^s)^2 pixels to pool. With samples
// M, glimpse rows are M consecutive trajectories per image (row i looks at
// image i / M), and no image is copied.
class RetinaSource {
 public:
  RetinaSource(const at::Tensor& images, int64_t patch, int64_t scales, int64_t samples = 1);
  // locations [B * samples, 2] -> [B * samples, scales * C, patch, patch],
  // as Retina.
  at::Tensor Glimpse(const at::Tensor& locations) const;

 private:
  int64_t patch_, scales_, rows_ = 0, channels_ = 0, height_ = 0, width_ = 0, pad_ = 0;
  at::Tensor padded_;    // flat [B * C * (H + 2 pad) * (W + 2 pad)], zeros around the images
  at::Tensor integral_;  // flat [B * C * (H + 2 pad + 1) * (W + 2 pad + 1)], double; scales > 1
  at::Tensor plane_;     // [B * samples, C, 1, 1]: each row's (image, channel) plane number
  at::Tensor steps_;     // [patch]: 0 .. patch - 1
};

class RamImpl : public torch::nn::Module {
 public:
  explicit RamImpl(RamOptions options = {});

  struct Output {
    at::Tensor logits;     // [B, classes]
    at::Tensor locations;  // [B, T, 2] l_0 .. l_{T-1}
    at::Tensor log_probs;  // [B, T - 1] log pi(l_1) .. log pi(l_{T-1})
    at::Tensor baselines;  // [B, T - 1] b_0 .. b_{T-2} (predicting the reward)
  };
  // images [B, channels, side, side]. Training mode samples the locations
  // (from `generator`'s global state: at::manual_seed fixes them);
  // evaluation mode takes the means. samples > 1: that many trajectories of
  // each image, consecutive (outputs have B * samples rows; trajectory i
  // looks at image i / samples), without copying the images.
  Output forward(const at::Tensor& images, int64_t samples = 1);
  // Sampled locations whatever the mode, from `generator` (the global one
  // untouched): for evaluations that average over sampled trajectories.
  Output forward_sampled(const at::Tensor& images, int64_t samples, at::Generator generator);

  RamOptions options;
  torch::nn::Linear glimpse_patch{nullptr}, glimpse_location{nullptr}, glimpse_what{nullptr},
      glimpse_where{nullptr}, core_hidden{nullptr}, core_glimpse{nullptr}, location{nullptr},
      baseline{nullptr}, classifier{nullptr};

 private:
  Output Run(const at::Tensor& images, int64_t samples, bool sample,
             c10::optional<at::Generator> generator);
};
TORCH_MODULE(Ram);

struct RamLoss {
  at::Tensor total;           // classification + reinforce + baseline
  at::Tensor classification;  // cross-entropy
  at::Tensor reinforce;
  at::Tensor baseline;
  at::Tensor reward;          // [B] 1 correct, 0 not
};

// Logits of `samples` consecutive trajectories per image [B * samples, K]
// -> [B, K]: the log of the mean class probabilities over each image's
// trajectories (argmax: the class the averaged prediction picks).
at::Tensor MeanProbabilityLogits(const at::Tensor& logits, int64_t samples);

// log N(sample | mean, std^2 I) over the last dimension: [..., d] -> [...].
at::Tensor GaussianLogProb(const at::Tensor& sample, const at::Tensor& mean, double std);

// The REINFORCE term alone: log_probs [B, T'], reward [B], baselines [B, T']
// -> -mean_b sum_t log_probs (reward - baselines.detach()).
at::Tensor ReinforceLoss(const at::Tensor& log_probs, const at::Tensor& reward,
                         const at::Tensor& baselines);

struct RamLossOptions {
  // The REINFORCE term's weight in the total loss. With policy "head" Adam
  // makes it irrelevant (the head sees no other gradient); with "all" it
  // sets how much the policy gradient shapes the shared features.
  TORCH_ARG(double, reinforce_weight) = 1.0;
  // > 1: the batch holds `samples` consecutive trajectories of each image
  // (images.repeat_interleave(samples, 0)), and REINFORCE's baseline for a
  // trajectory is the mean reward of the same image's other trajectories
  // (leave one out) instead of the learned b_t, which is still trained.
  TORCH_ARG(int64_t, samples) = 1;
  // "correct": R = 1 for a correct class, 0 otherwise (Mnih et al.);
  // "log_likelihood": R = log p(label) under the final logits (detached).
  TORCH_ARG(std::string, reward) = "correct";
};

RamLoss RamLosses(const RamImpl::Output& out, const at::Tensor& labels,
                  const RamLossOptions& options);
inline RamLoss RamLosses(const RamImpl::Output& out, const at::Tensor& labels,
                         double reinforce_weight = 1.0) {
  return RamLosses(out, labels, RamLossOptions().reinforce_weight(reinforce_weight));
}

}  // namespace baselines
}  // namespace indexgrad
