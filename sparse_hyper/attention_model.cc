#include "sparse_hyper/attention_model.h"

#include "sparse_hyper/digit_window.h"

namespace indexgrad {
namespace sparse_hyper {

SparseAttentionModel::SparseAttentionModel(const SparseAttentionOptions& options,
                                           double box_penalty)
    : net(register_module("net", SparseAttention(options))), box_penalty_(box_penalty) {}

std::pair<at::Tensor, at::Tensor> SparseAttentionModel::Loss(const at::Tensor& images,
                                                             const at::Tensor&,
                                                             const at::Tensor& labels) {
  const SparseAttentionImpl::Output out = net->forward(images);
  at::Tensor loss = at::cross_entropy_loss(out.logits, labels);
  if (box_penalty_ > 0) loss = loss + box_penalty_ * BoxSaturationPenalty(out.raw_boxes);
  return {loss, out.logits};
}

at::Tensor SparseAttentionModel::Logits(const at::Tensor& images, const at::Tensor&) {
  return net->forward(images).logits;
}

std::pair<at::Tensor, at::Tensor> SparseAttentionModel::Glimpses(const at::Tensor& images,
                                                                 const at::Tensor&) {
  const SparseAttentionImpl::Output out = net->forward(images);
  return {GlimpseBoxes(out.raw_boxes, images.size(2), images.size(3)),
          out.glimpses.reshape({images.size(0), net->options.glimpses(), -1})};
}

ConvNetModel::ConvNetModel(const SourceNetworkOptions& options)
    : net(register_module("net", SourceNetwork(options))) {}

std::pair<at::Tensor, at::Tensor> ConvNetModel::Loss(const at::Tensor& images, const at::Tensor&,
                                                     const at::Tensor& labels) {
  const at::Tensor logits = net->forward(images);
  return {at::cross_entropy_loss(logits, labels), logits};
}

at::Tensor ConvNetModel::Logits(const at::Tensor& images, const at::Tensor&) {
  return net->forward(images);
}

std::pair<at::Tensor, at::Tensor> ConvNetModel::Glimpses(const at::Tensor&, const at::Tensor&) {
  return {};
}

OracleModel::OracleModel(const SparseAttentionOptions& sparse1, bool sampled)
    : classifier(register_module("classifier", SparseAttentionClassifier(sparse1))),
      size_(sparse1.glimpse_size()) {
  if (sampled) {
    glimpse_ = register_module("glimpse", GlimpseLayer(SparseAttentionGlimpseOptions(sparse1)));
  }
}

std::pair<at::Tensor, at::Tensor> OracleModel::Loss(const at::Tensor& images,
                                                    const at::Tensor& positions,
                                                    const at::Tensor& labels) {
  const at::Tensor logits = Logits(images, positions);
  return {at::cross_entropy_loss(logits, labels), logits};
}

at::Tensor OracleModel::Logits(const at::Tensor& images, const at::Tensor& positions) {
  return classifier->forward(Window(images, positions).flatten(1));
}

std::pair<at::Tensor, at::Tensor> OracleModel::Glimpses(const at::Tensor& images,
                                                        const at::Tensor& positions) {
  const int64_t side = images.size(2);
  const at::Tensor boxes = glimpse_ ? GlimpseBoxes(Raw(images, positions), side, side)
                                    : DigitWindowBoxes(positions, size_).unsqueeze(1);
  return {boxes, Window(images, positions).reshape({images.size(0), 1, -1})};
}

at::Tensor OracleModel::Raw(const at::Tensor& images, const at::Tensor& positions) const {
  return DigitWindowRawBoxes(positions, size_, images.size(2))
      .to(images.device(), images.scalar_type());
}

at::Tensor OracleModel::Window(const at::Tensor& images, const at::Tensor& positions) {
  if (!glimpse_) return DigitCrops(images, positions, size_);
  return glimpse_->forward(images, Raw(images, positions)).squeeze(1);  // [B, C, k, k]
}

}  // namespace sparse_hyper
}  // namespace indexgrad
