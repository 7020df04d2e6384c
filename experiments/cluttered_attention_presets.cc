#include "experiments/cluttered_attention_presets.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "experiments/common/flags.h"

namespace indexgrad {
namespace experiments {

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

namespace {

// Methods, data sizes and the learning-rate schedule.
absl::Status ApplyDataAndSchedule(const AttentionFlagOverrides& o, AttentionPreset* p) {
  if (!o.methods.empty()) {
    const absl::Status st =
        ParseChoices("methods", o.methods, AttentionMethods(), &p->methods);
    if (!st.ok()) return st;
  }
  if (o.canvas >= 0) p->data.canvas = o.canvas;
  if (o.distractors >= 0) p->data.distractors = o.distractors;
  if (p->data.canvas < 32 || p->data.canvas > 255) {
    return FlagError("canvas", "in [32, 255]", p->data.canvas);
  }
  const int64_t max_split[3] = {60000, data::kValidationSize, 10000};
  const char* size_flags[3] = {"train_size", "val_size", "test_size"};
  int64_t* sizes[3] = {&p->train_size, &p->val_size, &p->test_size};
  const int64_t given[3] = {o.train_size, o.val_size, o.test_size};
  for (int i = 0; i < 3; ++i) {
    if (given[i] >= 0) *sizes[i] = given[i];
    if (*sizes[i] < 1 || *sizes[i] > max_split[i]) {
      return FlagError(size_flags[i], absl::StrCat("in [1, ", max_split[i], "]"), *sizes[i]);
    }
  }
  if (o.epochs >= 0) p->epochs = o.epochs;
  if (p->epochs < 1) return FlagError("epochs", ">= 1", p->epochs);
  if (o.batch >= 0) p->batch = o.batch;
  if (p->batch < 1 || p->batch > p->train_size) {
    return FlagError("batch", absl::StrCat("in [1, train_size = ", p->train_size, "]"), p->batch);
  }
  if (!(o.lr < 0)) p->lr = o.lr;  // NaN is not unset: refused below
  if (!(p->lr > 0) || !std::isfinite(p->lr)) return FlagError("lr", "> 0", p->lr);
  if (o.warmup_steps >= 0) p->warmup_steps = o.warmup_steps;
  if (o.lr_decay_epoch >= 0) p->lr_decay_epoch = o.lr_decay_epoch;
  if (p->lr_decay_epoch >= p->epochs) {
    return FlagError("lr_decay_epoch", absl::StrCat("0 (none) or below epochs = ", p->epochs),
               p->lr_decay_epoch);
  }
  if (!(o.lr_decay_factor < 0)) p->lr_decay_factor = o.lr_decay_factor;
  if (!(p->lr_decay_factor > 0 && p->lr_decay_factor <= 1)) {
    return FlagError("lr_decay_factor", "in (0, 1]", p->lr_decay_factor);
  }
  return absl::OkStatus();
}

// The sparse models', ConvNet's and oracles' networks, and evaluation.
absl::Status ApplyModel(const AttentionFlagOverrides& o, AttentionPreset* p) {
  // Negative: unset; NaN is not, and is refused below.
  if (!(o.box_penalty < 0)) p->box_penalty = o.box_penalty;
  if (!(p->box_penalty >= 0) || !std::isfinite(p->box_penalty)) {
    return FlagError("box_penalty", "a finite number >= 0", p->box_penalty);
  }
  if (!(o.source_width < 0)) p->source_width = o.source_width;
  if (!(p->source_width > 0) || p->source_width > 4) {
    return FlagError("source_width", "in (0, 4]", p->source_width);
  }
  if (o.source_hidden >= 0) p->source_hidden = o.source_hidden;
  if (p->source_hidden < 1) return FlagError("source_hidden", ">= 1", p->source_hidden);
  if (o.classifier_hidden >= 0) p->classifier_hidden = o.classifier_hidden;
  if (p->classifier_hidden < 1) return FlagError("classifier_hidden", ">= 1", p->classifier_hidden);
  if (!(o.initial_variance < 0)) p->initial_variance = o.initial_variance;
  if (p->initial_variance != 0 && !(p->initial_variance > 0.1)) {
    return FlagError("initial_variance", "0 (the paper's) or > 0.1 px^2", p->initial_variance);
  }
  if (o.glimpse_eval_samples >= 0) p->glimpse_eval_samples = o.glimpse_eval_samples;
  if (p->glimpse_eval_samples > 64) {
    return FlagError("glimpse_eval_samples", "in [0, 64]", p->glimpse_eval_samples);
  }
  if (o.evals_per_epoch >= 0) p->evals_per_epoch = o.evals_per_epoch;
  if (p->evals_per_epoch < 1) return FlagError("evals_per_epoch", ">= 1", p->evals_per_epoch);
  return absl::OkStatus();
}

// RAM's settings.
absl::Status ApplyRam(const AttentionFlagOverrides& o, AttentionPreset* p) {
  if (!(o.ram_location_std < 0)) p->ram_location_std = o.ram_location_std;
  if (!(p->ram_location_std > 0) || !(p->ram_location_std <= 2)) {
    return FlagError("ram_location_std", "in (0, 2]", p->ram_location_std);
  }
  if (!(o.ram_location_std_end < 0)) p->ram_location_std_end = o.ram_location_std_end;
  if (!(p->ram_location_std_end == 0) &&
      !(p->ram_location_std_end > 0 && p->ram_location_std_end <= 2)) {
    return FlagError("ram_location_std_end", "0 (constant) or in (0, 2]", p->ram_location_std_end);
  }
  if (!o.ram_init.empty()) p->ram_init = o.ram_init;
  if (p->ram_init != "irnn" && p->ram_init != "default") {
    return FlagError("ram_init", "irnn or default", p->ram_init);
  }
  if (o.fresh_clutter) p->fresh_clutter = true;
  if (o.train_error) p->train_error = true;
  if (!o.ram_policy.empty()) p->ram_policy = o.ram_policy;
  if (p->ram_policy != "head" && p->ram_policy != "all") {
    return FlagError("ram_policy", "head or all", p->ram_policy);
  }
  if (!(o.ram_reinforce_weight < 0)) p->ram_reinforce_weight = o.ram_reinforce_weight;
  if (!(p->ram_reinforce_weight >= 0) || !std::isfinite(p->ram_reinforce_weight)) {
    return FlagError("ram_reinforce_weight", "a finite number >= 0", p->ram_reinforce_weight);
  }
  if (o.ram_samples >= 0) p->ram_samples = o.ram_samples;
  if (p->ram_samples < 1 || p->ram_samples > 64) {
    return FlagError("ram_samples", "in [1, 64]", p->ram_samples);
  }
  if (o.ram_eval_samples >= 0) p->ram_eval_samples = o.ram_eval_samples;
  if (p->ram_eval_samples < 1 || p->ram_eval_samples > 64) {
    return FlagError("ram_eval_samples", "in [1, 64]", p->ram_eval_samples);
  }
  if (!o.ram_reward.empty()) p->ram_reward = o.ram_reward;
  if (p->ram_reward != "correct" && p->ram_reward != "log_likelihood") {
    return FlagError("ram_reward", "correct or log_likelihood", p->ram_reward);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyAttentionOverrides(const AttentionFlagOverrides& o, AttentionPreset* p) {
  if (absl::Status st = ApplyDataAndSchedule(o, p); !st.ok()) return st;
  if (absl::Status st = ApplyModel(o, p); !st.ok()) return st;
  return ApplyRam(o, p);
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

double AttentionLearningRate(const AttentionPreset& p, int64_t step, int64_t steps_per_epoch) {
  // Linear warmup: Adam's first steps move every weight by about lr at once
  // (bias-corrected moments of one gradient).
  const double warm =
      p.warmup_steps > 0 ? std::min(1.0, double(step + 1) / double(p.warmup_steps)) : 1.0;
  const bool decayed = p.lr_decay_epoch > 0 && step >= p.lr_decay_epoch * steps_per_epoch;
  return p.lr * warm * (decayed ? p.lr_decay_factor : 1.0);
}

}  // namespace experiments
}  // namespace indexgrad
