#include "experiments/cluttered_attention_eval.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sparse_hyper/digit_window.h"

namespace indexgrad {
namespace experiments {

using sparse_hyper::AttentionModel;

namespace {

constexpr int64_t kFigureImages = 8;

// Runs `fn(images, begin, end)` on `set` in batches of 250 (images on the
// model's device), the model in evaluation mode without gradients.
template <typename Fn>
void ForEachEvalBatch(AttentionModel& model, const data::ClutteredSet& set,
                      const c10::Device& device, Fn&& fn) {
  at::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const int64_t n = set.images.size(0);
  for (int64_t b = 0; b < n; b += 250) {
    const int64_t e = std::min(n, b + 250);
    fn(ToModelImages(set.images.slice(0, b, e)).to(device), b, e);
  }
  model.train(was_training);
}

}  // namespace

// Per image of `set`: whether the evaluation-mode prediction is wrong, bool [N].
at::Tensor WrongPredictions(AttentionModel& model, const data::ClutteredSet& set,
                            const c10::Device& device) {
  std::vector<at::Tensor> wrong;
  ForEachEvalBatch(model, set, device, [&](const at::Tensor& images, int64_t b, int64_t e) {
    wrong.push_back(model.Logits(images, set.positions.slice(0, b, e))
                        .argmax(1)
                        .cpu()
                        .ne(set.labels.slice(0, b, e)));
  });
  return wrong.empty() ? at::zeros({0}, at::kBool) : at::cat(wrong);
}

// The fraction of true entries of a bool [N] (0 for N = 0).
double Fraction(const at::Tensor& flags) {
  const int64_t n = flags.numel();
  return n == 0 ? 0.0 : double(flags.sum().item<int64_t>()) / double(n);
}

// Error rate (fraction) of the model in evaluation mode.
double ErrorRate(AttentionModel& model, const data::ClutteredSet& set,
                 const c10::Device& device) {
  return Fraction(WrongPredictions(model, set, device));
}

// Fills r's localisation fields from `set` and the model's wrong predictions
// on it (`wrong`, bool [N]); a model without boxes leaves them NaN.
void MeasureLocalisation(AttentionModel& model, const data::ClutteredSet& set,
                         const at::Tensor& wrong, const c10::Device& device,
                         AttentionRunResult* r) {
  std::vector<at::Tensor> hits;
  bool has_boxes = true;
  ForEachEvalBatch(model, set, device, [&](const at::Tensor& images, int64_t b, int64_t e) {
    if (!has_boxes) return;
    const at::Tensor boxes = model.Glimpses(images, set.positions.slice(0, b, e)).first;
    has_boxes = boxes.defined();
    if (has_boxes) hits.push_back(sparse_hyper::DigitCentreInBox(boxes.cpu(), set.positions.slice(0, b, e)));
  });
  if (!has_boxes || hits.empty()) return;
  const at::Tensor hit = at::cat(hits);
  const int64_t n = hit.numel(), in = hit.sum().item<int64_t>();
  r->box_hit_rate = double(in) / double(n);
  r->error_given_hit = in > 0 ? Fraction(wrong.masked_select(hit)) : NAN;
  r->error_given_miss = in < n ? Fraction(wrong.masked_select(~hit)) : NAN;
}

// Rows: image,i,label,prediction,pixels... / box,i,g,y0,x0,y1,x1 /
// glimpse,i,g,k,values...
absl::Status WriteGlimpseFigure(AttentionModel& model, const data::ClutteredSet& test,
                                const std::string& path, const c10::Device& device) {
  at::NoGradGuard no_grad;
  model.eval();
  const int64_t n = std::min<int64_t>(kFigureImages, test.images.size(0));
  const at::Tensor images = ToModelImages(test.images.slice(0, 0, n));
  const at::Tensor on_device = images.to(device);
  const at::Tensor positions = test.positions.slice(0, 0, n);
  const at::Tensor pred = model.Logits(on_device, positions).argmax(1).cpu();
  auto [boxes, glimpses] = model.Glimpses(on_device, positions);
  if (boxes.defined()) {
    boxes = boxes.cpu();
    glimpses = glimpses.cpu();
  }
  model.train();
  std::ofstream out(path);
  if (!out) return absl::InternalError(absl::StrCat("could not write '", path, "'"));
  for (int64_t i = 0; i < n; ++i) {
    const at::Tensor px = images[i].reshape({-1}).contiguous();
    out << "image," << i << "," << test.labels[i].item<int64_t>() << ","
        << pred[i].item<int64_t>() << ","
        << absl::StrJoin(px.data_ptr<float>(), px.data_ptr<float>() + px.numel(), ",") << "\n";
    if (!boxes.defined()) continue;
    for (int64_t g = 0; g < boxes.size(1); ++g) {
      const at::Tensor b = boxes[i][g].to(at::kDouble).contiguous();
      out << "box," << i << "," << g << ","
          << absl::StrJoin(b.data_ptr<double>(), b.data_ptr<double>() + 4, ",") << "\n";
      const at::Tensor v = glimpses[i][g].to(at::kDouble).contiguous();
      const int64_t k = std::lround(std::sqrt(double(v.numel())));
      out << "glimpse," << i << "," << g << "," << k << ","
          << absl::StrJoin(v.data_ptr<double>(), v.data_ptr<double>() + v.numel(), ",") << "\n";
    }
  }
  return out ? absl::OkStatus() : absl::InternalError(absl::StrCat("could not write '", path, "'"));
}

}  // namespace experiments
}  // namespace indexgrad
