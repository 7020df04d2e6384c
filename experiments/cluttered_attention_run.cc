#include "experiments/cluttered_attention_run.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adam.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "experiments/common/flags.h"
#include "experiments/common/summary.h"
#include "baselines/ram.h"
#include "experiments/common/train_loop.h"
#include "sparse_hyper/attention.h"

namespace indexgrad {
namespace experiments {

namespace sh = sparse_hyper;

namespace {

constexpr int64_t kFigureImages = 8;

// One interface over the methods, so one loop trains them all.
class AttentionModel : public torch::nn::Module {
 public:
  // `positions` [B, 2] (CPU, int64) are the digits' recorded top-left
  // corners: only the oracle reads them.
  // The scalar to minimise on a batch, and the training forward's logits.
  virtual std::pair<at::Tensor, at::Tensor> Loss(const at::Tensor& images,
                                                 const at::Tensor& positions,
                                                 const at::Tensor& labels) = 0;
  virtual at::Tensor Logits(const at::Tensor& images, const at::Tensor& positions) = 0;
  // Evaluation-mode boxes [B, g, 4] (y0, x0, y1, x1 in pixels) and glimpse
  // contents [B, g, k * k]; undefined for a model without glimpses.
  virtual std::pair<at::Tensor, at::Tensor> Glimpses(const at::Tensor& images,
                                                     const at::Tensor& positions) = 0;
  // Before each training step: step of total.
  virtual void SetProgress(int64_t /*step*/, int64_t /*total*/) {}
};

class SparseModel : public AttentionModel {
 public:
  SparseModel(const sh::SparseAttentionOptions& o, double box_penalty)
      : net(register_module("net", sh::SparseAttention(o))), box_penalty_(box_penalty) {}
  std::pair<at::Tensor, at::Tensor> Loss(const at::Tensor& images, const at::Tensor&,
                                         const at::Tensor& labels) override {
    const sh::SparseAttentionImpl::Output out = net->forward(images);
    at::Tensor loss = at::cross_entropy_loss(out.logits, labels);
    if (box_penalty_ > 0) loss = loss + box_penalty_ * sh::BoxSaturationPenalty(out.raw_boxes);
    return {loss, out.logits};
  }
  at::Tensor Logits(const at::Tensor& images, const at::Tensor&) override {
    return net->forward(images).logits;
  }
  std::pair<at::Tensor, at::Tensor> Glimpses(const at::Tensor& images,
                                             const at::Tensor&) override {
    const sh::SparseAttentionImpl::Output out = net->forward(images);
    return {sh::GlimpseBoxes(out.raw_boxes, images.size(2), images.size(3)),
            out.glimpses.reshape({images.size(0), net->options.glimpses(), -1})};
  }
  sh::SparseAttention net;

 private:
  double box_penalty_;
};

class RamModel : public AttentionModel {
 public:
  // std_end > 0: the policy's std falls geometrically from o.location_std()
  // to std_end over the run.
  RamModel(const baselines::RamOptions& o, const baselines::RamLossOptions& loss, double std_end,
           int64_t eval_samples)
      : net(register_module("net", baselines::Ram(o))),
        loss_(loss),
        eval_samples_(eval_samples),
        std_start_(o.location_std()),
        std_end_(std_end > 0 ? std_end : o.location_std()) {}
  void SetProgress(int64_t step, int64_t total) override {
    const double t = total > 0 ? std::min(1.0, double(step) / double(total)) : 1.0;
    net->options.location_std(std_start_ * std::pow(std_end_ / std_start_, t));
  }
  std::pair<at::Tensor, at::Tensor> Loss(const at::Tensor& images, const at::Tensor&,
                                         const at::Tensor& labels) override {
    // m trajectories of each image, consecutive; the first one's logits
    // stand for the batch's error.
    const int64_t m = loss_.samples();
    const baselines::RamImpl::Output out = net->forward(images, m);
    return {baselines::RamLosses(out, labels.repeat_interleave(m, 0), loss_).total,
            out.logits.view({images.size(0), m, -1}).select(1, 0)};
  }
  at::Tensor Logits(const at::Tensor& images, const at::Tensor&) override {
    if (eval_samples_ == 1) return net->forward(images).logits;
    // log of the mean class probabilities over eval_samples_ trajectories.
    at::Generator gen = at::detail::createCPUGenerator(kEvalSeed);
    return baselines::MeanProbabilityLogits(
        net->forward_sampled(images, eval_samples_, gen).logits, eval_samples_);
  }
  std::pair<at::Tensor, at::Tensor> Glimpses(const at::Tensor& images,
                                             const at::Tensor&) override {
    // The finest patch at each location, as a box and its contents.
    const baselines::RamImpl::Output out = net->forward(images);
    const int64_t b = images.size(0), t = out.locations.size(1), p = net->options.patch();
    const at::Tensor loc = out.locations.reshape({b * t, 2});
    const at::Tensor top_left =  // [b t, 2], as the retina centres its patches
        baselines::LocationPixels(loc, images.size(2), images.size(3)).to(loc.scalar_type()) -
        p / 2;
    const at::Tensor boxes = at::cat({top_left, top_left + (p - 1)}, 1).view({b, t, 4});
    const at::Tensor repeated = images.unsqueeze(1).expand({b, t, -1, -1, -1})
                                    .reshape({b * t, images.size(1), images.size(2), images.size(3)});
    const at::Tensor patches = baselines::Retina(repeated, loc, p, 1).view({b, t, -1});
    return {boxes, patches};
  }
  baselines::Ram net;

 private:
  static constexpr uint64_t kEvalSeed = 20141210;
  baselines::RamLossOptions loss_;
  int64_t eval_samples_;
  double std_start_, std_end_;
};

class ConvNetModel : public AttentionModel {
 public:
  explicit ConvNetModel(const sh::SourceNetworkOptions& o)
      : net(register_module("net", sh::SourceNetwork(o))) {}
  std::pair<at::Tensor, at::Tensor> Loss(const at::Tensor& images, const at::Tensor&,
                                         const at::Tensor& labels) override {
    const at::Tensor logits = net->forward(images);
    return {at::cross_entropy_loss(logits, labels), logits};
  }
  at::Tensor Logits(const at::Tensor& images, const at::Tensor&) override {
    return net->forward(images);
  }
  std::pair<at::Tensor, at::Tensor> Glimpses(const at::Tensor&, const at::Tensor&) override {
    return {};
  }
  torch::nn::Sequential net;
};

// Perfect localisation: sparse1's classifier (SparseAttentionClassifier)
// on the k x k window centred on the digit at its recorded position. What
// the one-glimpse model could reach if its box were always right.
// `sampled` false: the window is a plain crop (DigitCrops); true: sparse1's
// sampled glimpse (its GlimpseLayer, learned variance and value) of the
// window's box (DigitWindowRawBoxes: corners kept half a pixel inside the
// image, so a window past an edge is squeezed in).
class OracleModel : public AttentionModel {
 public:
  // `sparse1`: the one-glimpse model's options (glimpse size, classifier,
  // sampling).
  OracleModel(const sh::SparseAttentionOptions& sparse1, bool sampled)
      : classifier(register_module("classifier", sh::SparseAttentionClassifier(sparse1))),
        size_(sparse1.glimpse_size()) {
    if (sampled) {
      glimpse_ = register_module("glimpse",
                                 sh::GlimpseLayer(sh::SparseAttentionGlimpseOptions(sparse1)));
    }
  }
  std::pair<at::Tensor, at::Tensor> Loss(const at::Tensor& images, const at::Tensor& positions,
                                         const at::Tensor& labels) override {
    const at::Tensor logits = Logits(images, positions);
    return {at::cross_entropy_loss(logits, labels), logits};
  }
  at::Tensor Logits(const at::Tensor& images, const at::Tensor& positions) override {
    return classifier->forward(Window(images, positions).flatten(1));
  }
  std::pair<at::Tensor, at::Tensor> Glimpses(const at::Tensor& images,
                                             const at::Tensor& positions) override {
    const int64_t side = images.size(2);
    const at::Tensor boxes = glimpse_ ? sh::GlimpseBoxes(Raw(images, positions), side, side)
                                      : DigitWindowBoxes(positions, size_).unsqueeze(1);
    return {boxes, Window(images, positions).reshape({images.size(0), 1, -1})};
  }
  torch::nn::Sequential classifier;

 private:
  at::Tensor Raw(const at::Tensor& images, const at::Tensor& positions) const {
    return DigitWindowRawBoxes(positions, size_, images.size(2))
        .to(images.device(), images.scalar_type());
  }
  at::Tensor Window(const at::Tensor& images, const at::Tensor& positions) {
    if (!glimpse_) return DigitCrops(images, positions, size_);
    return glimpse_->forward(images, Raw(images, positions)).squeeze(1);  // [B, C, k, k]
  }
  int64_t size_;
  sh::GlimpseLayer glimpse_{nullptr};
};

absl::StatusOr<std::shared_ptr<AttentionModel>> MakeModel(const std::string& method,
                                                          const AttentionPreset& p,
                                                          int64_t seed) {
  const int64_t side = p.data.canvas;
  // The sparse models' options (one glimpse of 32 x 32, or eight of 12 x 12).
  const auto sparse = [&](bool one) {
    return sh::SparseAttentionOptions()
        .side(side)
        .glimpses(one ? 1 : 8)
        .glimpse_size(one ? 32 : 12)
        .source_width(p.source_width)
        .source_hidden(p.source_hidden)
        .classifier_hidden(p.classifier_hidden)
        .initial_variance(p.initial_variance)
        .eval_samples(p.glimpse_eval_samples)
        .seed(seed);
  };
  if (method == "sparse1" || method == "sparse8") {
    return std::shared_ptr<AttentionModel>(
        std::make_shared<SparseModel>(sparse(method == "sparse1"), p.box_penalty));
  }
  if (method == "ram") {
    return std::shared_ptr<AttentionModel>(std::make_shared<RamModel>(
        baselines::RamOptions()
            .side(side)
            .scales(side > 60 ? 4 : 3)
            .location_std(p.ram_location_std)
            .init(p.ram_init)
            .policy(p.ram_policy),
        baselines::RamLossOptions()
            .reinforce_weight(p.ram_reinforce_weight)
            .samples(p.ram_samples)
            .reward(p.ram_reward),
        p.ram_location_std_end, p.ram_eval_samples));
  }
  if (method == "convnet") {
    return std::shared_ptr<AttentionModel>(std::make_shared<ConvNetModel>(
        sh::SourceNetworkOptions()
            .side(side)
            .width(p.source_width)
            .hidden(p.source_hidden)
            .outputs(10)));
  }
  if (method == "oracle" || method == "oracle_sampled") {
    return std::shared_ptr<AttentionModel>(
        std::make_shared<OracleModel>(sparse(/*one=*/true), method == "oracle_sampled"));
  }
  const std::vector<std::string>& all = AttentionMethods();
  return absl::InvalidArgumentError(
      absl::StrCat("method must be ", absl::StrJoin(all.begin(), all.end() - 1, ", "), " or ",
                   all.back(), ", got '", method, "'"));
}

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
    if (has_boxes) hits.push_back(DigitCentreInBox(boxes.cpu(), set.positions.slice(0, b, e)));
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

}  // namespace

const std::vector<std::string>& AttentionMethods() {
  static const std::vector<std::string>* const methods = new std::vector<std::string>{
      "sparse1", "sparse8", "ram", "convnet", "oracle", "oracle_sampled"};
  return *methods;
}

absl::StatusOr<AttentionPreset> AttentionPresetNamed(const std::string& name) {
  AttentionPreset p;
  if (name == "default") return p;
  if (name != "paper") {
    return absl::InvalidArgumentError(
        absl::StrCat("--preset must be default or paper, got '", name, "'"));
  }
  p.data.canvas = 100;
  p.data.distractors = 8;
  p.train_size = 60000;
  p.val_size = 5000;
  p.test_size = 10000;
  p.epochs = 70;
  p.batch = 128;
  p.lr = 1e-4;
  p.source_width = 1.0;
  p.source_hidden = 512;
  return p;
}

absl::Status ApplyAttentionOverrides(const AttentionFlagOverrides& o, AttentionPreset* p) {
  const auto bad = [](const char* flag, const std::string& what, const auto& got) {
    return FlagError(flag, what, got);
  };
  if (!o.methods.empty()) {
    const absl::Status st =
        ParseChoices("methods", o.methods, AttentionMethods(), &p->methods);
    if (!st.ok()) return st;
  }
  if (o.canvas >= 0) p->data.canvas = o.canvas;
  if (o.distractors >= 0) p->data.distractors = o.distractors;
  if (p->data.canvas < 32 || p->data.canvas > 255) {
    return bad("canvas", "in [32, 255]", p->data.canvas);
  }
  const int64_t max_split[3] = {60000, data::kValidationSize, 10000};
  const char* size_flags[3] = {"train_size", "val_size", "test_size"};
  int64_t* sizes[3] = {&p->train_size, &p->val_size, &p->test_size};
  const int64_t given[3] = {o.train_size, o.val_size, o.test_size};
  for (int i = 0; i < 3; ++i) {
    if (given[i] >= 0) *sizes[i] = given[i];
    if (*sizes[i] < 1 || *sizes[i] > max_split[i]) {
      return bad(size_flags[i], absl::StrCat("in [1, ", max_split[i], "]"), *sizes[i]);
    }
  }
  if (o.epochs >= 0) p->epochs = o.epochs;
  if (p->epochs < 1) return bad("epochs", ">= 1", p->epochs);
  if (o.batch >= 0) p->batch = o.batch;
  if (p->batch < 1 || p->batch > p->train_size) {
    return bad("batch", absl::StrCat("in [1, train_size = ", p->train_size, "]"), p->batch);
  }
  if (o.lr >= 0) p->lr = o.lr;
  if (!(p->lr > 0) || !std::isfinite(p->lr)) return bad("lr", "> 0", p->lr);
  if (o.warmup_steps >= 0) p->warmup_steps = o.warmup_steps;
  if (o.lr_decay_epoch >= 0) p->lr_decay_epoch = o.lr_decay_epoch;
  if (p->lr_decay_epoch >= p->epochs) {
    return bad("lr_decay_epoch", absl::StrCat("0 (none) or below epochs = ", p->epochs),
               p->lr_decay_epoch);
  }
  if (!(o.lr_decay_factor < 0)) p->lr_decay_factor = o.lr_decay_factor;
  if (!(p->lr_decay_factor > 0 && p->lr_decay_factor <= 1)) {
    return bad("lr_decay_factor", "in (0, 1]", p->lr_decay_factor);
  }
  // Negative: unset; NaN is not, and is refused below.
  if (!(o.box_penalty < 0)) p->box_penalty = o.box_penalty;
  if (!(p->box_penalty >= 0) || !std::isfinite(p->box_penalty)) {
    return bad("box_penalty", "a finite number >= 0", p->box_penalty);
  }
  if (o.source_width >= 0) p->source_width = o.source_width;
  if (!(p->source_width > 0) || p->source_width > 4) {
    return bad("source_width", "in (0, 4]", p->source_width);
  }
  if (o.source_hidden >= 0) p->source_hidden = o.source_hidden;
  if (p->source_hidden < 1) return bad("source_hidden", ">= 1", p->source_hidden);
  if (o.classifier_hidden >= 0) p->classifier_hidden = o.classifier_hidden;
  if (p->classifier_hidden < 1) return bad("classifier_hidden", ">= 1", p->classifier_hidden);
  if (o.initial_variance >= 0) p->initial_variance = o.initial_variance;
  if (p->initial_variance != 0 && !(p->initial_variance > 0.1)) {
    return bad("initial_variance", "0 (the paper's) or > 0.1 px^2", p->initial_variance);
  }
  if (!(o.ram_location_std < 0)) p->ram_location_std = o.ram_location_std;
  if (!(p->ram_location_std > 0) || !(p->ram_location_std <= 2)) {
    return bad("ram_location_std", "in (0, 2]", p->ram_location_std);
  }
  if (!(o.ram_location_std_end < 0)) p->ram_location_std_end = o.ram_location_std_end;
  if (!(p->ram_location_std_end == 0) &&
      !(p->ram_location_std_end > 0 && p->ram_location_std_end <= 2)) {
    return bad("ram_location_std_end", "0 (constant) or in (0, 2]", p->ram_location_std_end);
  }
  if (!o.ram_init.empty()) p->ram_init = o.ram_init;
  if (p->ram_init != "irnn" && p->ram_init != "default") {
    return bad("ram_init", "irnn or default", p->ram_init);
  }
  if (o.fresh_clutter) p->fresh_clutter = true;
  if (o.train_error) p->train_error = true;
  if (!o.ram_policy.empty()) p->ram_policy = o.ram_policy;
  if (p->ram_policy != "head" && p->ram_policy != "all") {
    return bad("ram_policy", "head or all", p->ram_policy);
  }
  if (!(o.ram_reinforce_weight < 0)) p->ram_reinforce_weight = o.ram_reinforce_weight;
  if (!(p->ram_reinforce_weight >= 0) || !std::isfinite(p->ram_reinforce_weight)) {
    return bad("ram_reinforce_weight", "a finite number >= 0", p->ram_reinforce_weight);
  }
  if (o.ram_samples >= 0) p->ram_samples = o.ram_samples;
  if (p->ram_samples < 1 || p->ram_samples > 64) {
    return bad("ram_samples", "in [1, 64]", p->ram_samples);
  }
  if (o.ram_eval_samples >= 0) p->ram_eval_samples = o.ram_eval_samples;
  if (p->ram_eval_samples < 1 || p->ram_eval_samples > 64) {
    return bad("ram_eval_samples", "in [1, 64]", p->ram_eval_samples);
  }
  if (!o.ram_reward.empty()) p->ram_reward = o.ram_reward;
  if (p->ram_reward != "correct" && p->ram_reward != "log_likelihood") {
    return bad("ram_reward", "correct or log_likelihood", p->ram_reward);
  }
  if (o.glimpse_eval_samples >= 0) p->glimpse_eval_samples = o.glimpse_eval_samples;
  if (p->glimpse_eval_samples > 64) {
    return bad("glimpse_eval_samples", "in [0, 64]", p->glimpse_eval_samples);
  }
  if (o.evals_per_epoch >= 0) p->evals_per_epoch = o.evals_per_epoch;
  if (p->evals_per_epoch < 1) return bad("evals_per_epoch", ">= 1", p->evals_per_epoch);
  return absl::OkStatus();
}

std::string DescribeAttentionPreset(const AttentionPreset& p) {
  const std::string decay =
      p.lr_decay_epoch > 0
          ? absl::StrFormat(", times %g from epoch %d", p.lr_decay_factor, p.lr_decay_epoch)
          : "";
  const std::string std_end =
      p.ram_location_std_end > 0 ? absl::StrFormat(" falling to %g", p.ram_location_std_end) : "";
  const std::string ram_eval = p.ram_eval_samples > 1
                                   ? absl::StrFormat("over %d trajectories", p.ram_eval_samples)
                                   : "at the means";
  const std::string variance = p.initial_variance > 0
                                   ? absl::StrFormat("from %g px^2", p.initial_variance)
                                   : "the paper's";
  const std::string glimpse_eval =
      p.glimpse_eval_samples == 0   ? "at rounded positions"
      : p.glimpse_eval_samples == 1 ? "as one sampled draw"
                                    : absl::StrFormat("as the mean of %d sampled draws",
                                                      p.glimpse_eval_samples);
  std::vector<std::string> parts = {
      absl::StrFormat("%dx%d canvas", p.data.canvas, p.data.canvas),
      absl::StrFormat("%d distractors", p.data.distractors),
      absl::StrFormat("%d training images x %d epochs", p.train_size, p.epochs),
      absl::StrFormat("batch %d", p.batch),
      absl::StrFormat("Adam lr %g (warmup %d steps%s)", p.lr, p.warmup_steps, decay),
      absl::StrFormat("box penalty %g", p.box_penalty),
      absl::StrFormat("RAM location std %g%s", p.ram_location_std, std_end),
      absl::StrFormat("init %s", p.ram_init),
      absl::StrFormat("policy %s and REINFORCE weight %g", p.ram_policy, p.ram_reinforce_weight),
      absl::StrFormat("%d trajectories per image", p.ram_samples),
      absl::StrFormat("reward %s", p.ram_reward),
      absl::StrFormat("evaluation %s", ram_eval),
      absl::StrFormat("source network width %g / hidden %d", p.source_width, p.source_hidden),
      absl::StrFormat("classifier hidden %d", p.classifier_hidden),
      absl::StrFormat("glimpse variance %s", variance),
      absl::StrFormat("glimpses evaluated %s", glimpse_eval),
      absl::StrFormat("%d validation and %d test images", p.val_size, p.test_size)};
  if (p.fresh_clutter) parts.push_back("new clutter every epoch");
  return absl::StrJoin(parts, ", ");
}

at::Tensor ToModelImages(const at::Tensor& bytes) {
  return bytes.to(at::kFloat).div_(255.0f).unsqueeze(1);
}

absl::StatusOr<AttentionData> LoadAttentionData(const std::string& data_dir,
                                                const AttentionPreset& p, bool generate) {
  AttentionData data;
  for (auto [split, size, target] :
       {std::make_tuple(data::Split::kTrain, p.train_size, &data.train),
        std::make_tuple(data::Split::kValidation, p.val_size, &data.validation),
        std::make_tuple(data::Split::kTest, p.test_size, &data.test)}) {
    absl::StatusOr<data::ClutteredSet> set = data::LoadCluttered(data_dir, p.data, split, generate);
    if (!set.ok()) return set.status();
    target->images = set->images.slice(0, 0, size);
    target->labels = set->labels.slice(0, 0, size);
    target->positions = set->positions.slice(0, 0, size);
  }
  if (p.fresh_clutter) {
    auto mnist = data::LoadImageSet(data_dir, "mnist", data::Split::kTrain);
    if (!mnist.ok()) return mnist.status();
    data.train_digits = (mnist->images * 255.0f).round_().to(at::kByte);
    data.train_digit_labels = mnist->labels;
  }
  return data;
}

at::Tensor DigitCrops(const at::Tensor& images, const at::Tensor& positions, int64_t size) {
  TORCH_CHECK(images.dim() == 4 && images.size(2) == images.size(3) && images.size(2) >= 28,
              "DigitCrops: images must be [N, C, S, S] with S >= 28, got ", images.sizes());
  TORCH_CHECK(positions.dim() == 2 && positions.size(1) == 2 && positions.size(0) == images.size(0),
              "DigitCrops: positions must be [N = ", images.size(0), ", 2], got ",
              positions.sizes());
  TORCH_CHECK(!at::isFloatingType(positions.scalar_type()),
              "DigitCrops: positions must be integers, got ", positions.scalar_type());
  TORCH_CHECK(size >= 1, "DigitCrops: size must be >= 1, got ", size);
  const int64_t side = images.size(2);
  const at::Tensor pos = positions.to(at::kCPU, at::kLong).contiguous();
  const auto a = pos.accessor<int64_t, 2>();
  // The windows' top-left corners, integers (positions are), shifted by the padding.
  const at::Tensor corners = (DigitWindowBoxes(pos, size) + double(size)).to(at::kLong);
  const auto c = corners.accessor<int64_t, 2>();
  // Padded by `size` on every side, so every crop lies inside.
  const at::Tensor padded = at::constant_pad_nd(images, {size, size, size, size}, 0);
  std::vector<at::Tensor> crops;
  crops.reserve(images.size(0));
  for (int64_t i = 0; i < images.size(0); ++i) {
    TORCH_CHECK(a[i][0] >= 0 && a[i][0] <= side - 28 && a[i][1] >= 0 && a[i][1] <= side - 28,
                "DigitCrops: positions must lie in [0, ", side - 28, "], got (", a[i][0], ", ",
                a[i][1], ") for image ", i);
    crops.push_back(padded[i].narrow(1, c[i][0], size).narrow(2, c[i][1], size));
  }
  return at::stack(crops);
}

at::Tensor DigitWindowBoxes(const at::Tensor& positions, int64_t size) {
  TORCH_CHECK(positions.dim() == 2 && positions.size(1) == 2,
              "DigitWindowBoxes: positions must be [N, 2], got ", positions.sizes());
  TORCH_CHECK(size >= 1, "DigitWindowBoxes: size must be >= 1, got ", size);
  const at::Tensor top_left = positions.to(at::kCPU, at::kDouble) + double(14 - size / 2);
  return at::cat({top_left, top_left + double(size - 1)}, 1);
}

at::Tensor DigitWindowRawBoxes(const at::Tensor& positions, int64_t size, int64_t side) {
  TORCH_CHECK(size >= 2 && side >= 28, "DigitWindowRawBoxes: size must be >= 2 and side >= 28, got ",
              size, " and ", side);
  const at::Tensor boxes = DigitWindowBoxes(positions, size).clamp(0.5, double(side) - 1.5);
  return at::logit(boxes / double(side - 1)).unsqueeze(1);
}

at::Tensor DigitCentreInBox(const at::Tensor& boxes, const at::Tensor& positions) {
  TORCH_CHECK(boxes.dim() == 3 && boxes.size(2) == 4,
              "DigitCentreInBox: boxes must be [N, g, 4], got ", boxes.sizes());
  TORCH_CHECK(positions.dim() == 2 && positions.size(1) == 2 && positions.size(0) == boxes.size(0),
              "DigitCentreInBox: positions must be [N = ", boxes.size(0), ", 2], got ",
              positions.sizes());
  const at::Tensor b = boxes.to(at::kDouble);
  const at::Tensor centre = (positions.to(at::kDouble) + 13.5).unsqueeze(1);  // [N, 1, 2]
  const at::Tensor lo = at::min(b.slice(2, 0, 2), b.slice(2, 2, 4));         // [N, g, 2]
  const at::Tensor hi = at::max(b.slice(2, 0, 2), b.slice(2, 2, 4));
  return ((centre >= lo) & (centre <= hi)).all(2).any(1);
}

double AttentionLearningRate(const AttentionPreset& p, int64_t step, int64_t steps_per_epoch) {
  // Linear warmup: Adam's first steps move every weight by about lr at once
  // (bias-corrected moments of one gradient).
  const double warm =
      p.warmup_steps > 0 ? std::min(1.0, double(step + 1) / double(p.warmup_steps)) : 1.0;
  const bool decayed = p.lr_decay_epoch > 0 && step >= p.lr_decay_epoch * steps_per_epoch;
  return p.lr * warm * (decayed ? p.lr_decay_factor : 1.0);
}

absl::StatusOr<AttentionRunResult> RunAttention(const std::string& method,
                                                const AttentionPreset& p,
                                                const AttentionData& data, int64_t seed,
                                                const std::string& run_dir, bool resume,
                                                const c10::Device& device) {
  at::manual_seed(seed);
  absl::StatusOr<std::shared_ptr<AttentionModel>> made = MakeModel(method, p, seed);
  if (!made.ok()) return made.status();
  AttentionModel& model = **made;
  model.to(device);  // before the optimizer takes the parameters
  if (p.fresh_clutter && !data.train_digits.defined()) {
    return absl::InvalidArgumentError(
        "--fresh_clutter needs the MNIST training digits (AttentionData::train_digits)");
  }
  data::ClutteredSet train = data.train;  // replaced every epoch with fresh_clutter
  torch::optim::Adam adam(model.parameters(), torch::optim::AdamOptions(p.lr));
  const int64_t n = data.train.images.size(0);
  const int64_t per_epoch = (n + p.batch - 1) / p.batch;

  TrainLoopOptions loop;
  loop.label = absl::StrFormat("cluttered_attention %s", method);
  loop.steps = per_epoch * p.epochs;
  loop.eval_every = std::max<int64_t>(1, per_epoch / p.evals_per_epoch);
  loop.checkpoint_every = loop.eval_every;
  loop.checkpoint_path = absl::StrCat(run_dir, "/", method, ".ckpt");
  loop.resume = resume;
  loop.csv_path = absl::StrCat(run_dir, "/", method, ".csv");
  loop.train_columns = {"loss", "batch_error"};
  loop.eval_columns = {"val_error"};
  BestModel best(model);  // of the validation error; kept in the checkpoint
  loop.best = &best;

  // A fixed permutation per epoch (seeded by the epoch: resumes see the same).
  int64_t perm_epoch = -1;
  at::Tensor perm;
  absl::StatusOr<TrainResult> r = RunTrainLoop(
      loop, model, adam,
      [&](int64_t step) {
        const int64_t epoch = step / per_epoch, i = step % per_epoch;
        if (epoch != perm_epoch) {
          at::Generator gen = at::detail::createCPUGenerator(seed * 100003 + epoch);
          perm = at::randperm(n, gen);
          perm_epoch = epoch;
          if (p.fresh_clutter) {
            absl::StatusOr<data::ClutteredSet> fresh =
                epoch == 0 ? absl::StatusOr<data::ClutteredSet>(data.train)
                           : data::MakeCluttered(data.train_digits, data.train_digit_labels, n,
                                                 p.data, 1000 + epoch);
            TORCH_CHECK(fresh.ok(), "fresh clutter for epoch ", epoch, ": ",
                        std::string(fresh.status().message()));
            train = *fresh;
          }
        }
        const at::Tensor idx = perm.slice(0, i * p.batch, std::min(n, (i + 1) * p.batch));
        const at::Tensor images = ToModelImages(train.images.index_select(0, idx)).to(device);
        const at::Tensor labels = train.labels.index_select(0, idx).to(device);
        model.SetProgress(step, loop.steps);
        const auto [loss, logits] =
            model.Loss(images, train.positions.index_select(0, idx), labels);
        SetLearningRate(adam, AttentionLearningRate(p, step, per_epoch));
        adam.zero_grad();
        loss.backward();
        adam.step();
        const double batch_error =
            logits.detach().argmax(1).ne(labels).to(at::kDouble).mean().item<double>();
        return std::vector<double>{loss.item<double>(), batch_error};
      },
      [&](int64_t steps_done, bool*) {
        const double val = ErrorRate(model, data.validation, device);
        best.Offer(val, steps_done);
        return std::vector<double>{val};
      });
  if (!r.ok()) return r.status();
  AttentionRunResult result;
  result.method = method;
  result.steps_done = r->steps_done;
  result.epochs = double(r->steps_done) / double(per_epoch);
  result.seconds = r->seconds;
  result.seconds_per_epoch = r->steps_done > 0 ? r->seconds * per_epoch / r->steps_done : 0;
  result.final_loss = r->last_train.empty() ? NAN : r->last_train[0];
  result.validation_error = ErrorRate(model, data.validation, device);
  const at::Tensor wrong_on_test = WrongPredictions(model, data.test, device);
  result.test_error = Fraction(wrong_on_test);
  result.best_step = r->steps_done;
  result.best_validation_error = result.validation_error;
  result.best_test_error = result.test_error;
  if (best.has_best() && best.step() != r->steps_done) {
    // The glimpse figure and the checkpoint stay the final model's.
    best.WithBest([&] {
      result.best_step = best.step();
      result.best_validation_error = ErrorRate(model, data.validation, device);
      result.best_test_error = ErrorRate(model, data.test, device);
    });
  }
  if (p.train_error) result.train_error = ErrorRate(model, data.train, device);
  MeasureLocalisation(model, data.test, wrong_on_test, device, &result);
  if (absl::Status st = WriteGlimpseFigure(model, data.test,
                                           absl::StrCat(run_dir, "/", method, "_glimpses.csv"), device);
      !st.ok()) {
    return st;
  }
  return result;
}

namespace {

// summary.csv's (column, value) pairs of a run, in column order.
std::vector<std::pair<std::string, std::string>> SummaryFields(const AttentionRunResult& r) {
  return {{"method", r.method},
          {"steps", absl::StrCat(r.steps_done)},
          {"epochs", absl::StrCat(r.epochs)},
          {"val_error", absl::StrCat(r.validation_error)},
          {"test_error", absl::StrCat(r.test_error)},
          {"final_loss", absl::StrCat(r.final_loss)},
          {"seconds", absl::StrCat(r.seconds)},
          {"seconds_per_epoch", absl::StrCat(r.seconds_per_epoch)},
          {"best_step", absl::StrCat(r.best_step)},
          {"best_val_error", absl::StrCat(r.best_validation_error)},
          {"best_test_error", absl::StrCat(r.best_test_error)},
          {"train_error", absl::StrCat(r.train_error)},
          {"box_hit_rate", absl::StrCat(r.box_hit_rate)},
          {"error_given_hit", absl::StrCat(r.error_given_hit)},
          {"error_given_miss", absl::StrCat(r.error_given_miss)}};
}

}  // namespace

std::vector<std::string> AttentionSummaryColumns() {
  std::vector<std::string> columns;
  for (const auto& [column, value] : SummaryFields(AttentionRunResult())) columns.push_back(column);
  return columns;
}

std::vector<std::string> AttentionSummaryRow(const AttentionRunResult& r) {
  std::vector<std::string> row;
  for (const auto& [column, value] : SummaryFields(r)) row.push_back(value);
  return row;
}

std::string AttentionSummaryMarkdown(const AttentionPreset& p,
                                     const std::vector<AttentionRunResult>& runs) {
  bool any_train = false;
  for (const AttentionRunResult& r : runs) any_train |= !std::isnan(r.train_error);
  std::vector<std::vector<std::string>> rows;
  for (const AttentionRunResult& r : runs) {
    rows.push_back({r.method, absl::StrFormat("%.2f %%", 100 * r.validation_error),
                    absl::StrFormat("%.2f %%", 100 * r.test_error),
                    absl::StrFormat("%.2f", r.epochs), absl::StrFormat("%.1f", r.seconds_per_epoch),
                    absl::StrFormat("%.2f %% (%d)", 100 * r.best_validation_error, r.best_step),
                    absl::StrFormat("%.2f %%", 100 * r.best_test_error)});
    if (any_train) rows.back().push_back(absl::StrFormat("%.2f %%", 100 * r.train_error));
    rows.back().push_back(std::isnan(r.box_hit_rate)
                              ? std::string("-")
                              : absl::StrFormat("%.1f %% (%.2f %% / %.2f %%)", 100 * r.box_hit_rate,
                                                100 * r.error_given_hit, 100 * r.error_given_miss));
  }
  std::vector<std::string> header = {"method",   "validation error", "test error",
                                     "epochs",   "s / epoch",        "best validation error (step)",
                                     "test error there"};
  if (any_train) header.push_back("training-set error");
  header.push_back("digit centre in a box (test error there / elsewhere)");
  return absl::StrCat("Budget: ", DescribeAttentionPreset(p), ".\n\n", MarkdownTable(header, rows));
}

}  // namespace experiments
}  // namespace indexgrad
