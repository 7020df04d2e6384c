// Classifiers of cluttered images behind one interface, so that one training
// loop trains them all (experiments/cluttered_attention, Bloem et al. 2018
// section 3.2):
//   SparseAttentionModel  sparse-hyperlayer attention (sparse1: one 32 x 32
//                         glimpse; sparse8: eight 12 x 12), attention.h
//   ConvNetModel          the source network with a classification head and
//                         no attention
//   OracleModel           sparse1's classifier on the window centred on the
//                         digit's recorded position (perfect localisation: a
//                         reference, not a method)
// RAM's adapter is baselines/ram_model.h.
//
//   auto model = std::make_shared<SparseAttentionModel>(
//       SparseAttentionOptions().side(100).glimpses(1).glimpse_size(32), 0.01);
//   auto [loss, logits] = model->Loss(images, positions, labels);
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <cstdint>
#include <utility>

#include "sparse_hyper/attention.h"
#include "sparse_hyper/glimpse.h"

namespace indexgrad {
namespace sparse_hyper {

class AttentionModel : public torch::nn::Module {
 public:
  // images [B, C, S, S] in [0, 1]; `positions` [B, 2] (CPU, int64) are the
  // digits' recorded top-left corners: only the oracle reads them; labels
  // [B] int64. Returns the scalar to minimise and the training forward's
  // logits [B, 10].
  virtual std::pair<at::Tensor, at::Tensor> Loss(const at::Tensor& images,
                                                 const at::Tensor& positions,
                                                 const at::Tensor& labels) = 0;
  // The logits [B, 10] (in evaluation mode: the model's prediction).
  virtual at::Tensor Logits(const at::Tensor& images, const at::Tensor& positions) = 0;
  // Evaluation-mode boxes [B, g, 4] (y0, x0, y1, x1 in pixels) and glimpse
  // contents [B, g, k * k]; both undefined for a model without glimpses.
  virtual std::pair<at::Tensor, at::Tensor> Glimpses(const at::Tensor& images,
                                                     const at::Tensor& positions) = 0;
  // Before each training step: step of total (schedules of the model's own).
  virtual void SetProgress(int64_t /*step*/, int64_t /*total*/) {}
};

// SparseAttention trained on cross-entropy plus box_penalty times
// BoxSaturationPenalty of its raw boxes.
class SparseAttentionModel : public AttentionModel {
 public:
  SparseAttentionModel(const SparseAttentionOptions& options, double box_penalty);
  std::pair<at::Tensor, at::Tensor> Loss(const at::Tensor& images, const at::Tensor& positions,
                                         const at::Tensor& labels) override;
  at::Tensor Logits(const at::Tensor& images, const at::Tensor& positions) override;
  std::pair<at::Tensor, at::Tensor> Glimpses(const at::Tensor& images,
                                             const at::Tensor& positions) override;
  SparseAttention net;

 private:
  double box_penalty_;
};

// SourceNetwork(options) with `outputs` = 10, trained on cross-entropy.
class ConvNetModel : public AttentionModel {
 public:
  explicit ConvNetModel(const SourceNetworkOptions& options);
  std::pair<at::Tensor, at::Tensor> Loss(const at::Tensor& images, const at::Tensor& positions,
                                         const at::Tensor& labels) override;
  at::Tensor Logits(const at::Tensor& images, const at::Tensor& positions) override;
  std::pair<at::Tensor, at::Tensor> Glimpses(const at::Tensor& images,
                                             const at::Tensor& positions) override;
  torch::nn::Sequential net;
};

// Perfect localisation: sparse1's classifier (SparseAttentionClassifier) on
// the k x k window centred on the digit at its recorded position, k =
// sparse1.glimpse_size(): what the one-glimpse model could reach if its box
// were always right. `sampled` false: the window is a plain crop
// (DigitCrops); true: sparse1's sampled glimpse (its GlimpseLayer, learned
// variance and value) of the window's box (DigitWindowRawBoxes).
class OracleModel : public AttentionModel {
 public:
  OracleModel(const SparseAttentionOptions& sparse1, bool sampled);
  std::pair<at::Tensor, at::Tensor> Loss(const at::Tensor& images, const at::Tensor& positions,
                                         const at::Tensor& labels) override;
  at::Tensor Logits(const at::Tensor& images, const at::Tensor& positions) override;
  std::pair<at::Tensor, at::Tensor> Glimpses(const at::Tensor& images,
                                             const at::Tensor& positions) override;
  // The classifier's input: [B, C, k, k].
  at::Tensor Window(const at::Tensor& images, const at::Tensor& positions);
  torch::nn::Sequential classifier;

 private:
  at::Tensor Raw(const at::Tensor& images, const at::Tensor& positions) const;
  int64_t size_;
  GlimpseLayer glimpse_{nullptr};
};

}  // namespace sparse_hyper
}  // namespace indexgrad
