// The attention experiment's presets, flag checks, and a tiny end-to-end run
// of every method (CSV, glimpse figure data, resume from the checkpoint).
#include "experiments/cluttered_attention_run.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/testing/scratch.h"
#include "sparse_hyper/glimpse.h"

namespace indexgrad {
namespace experiments {
namespace {

TEST(AttentionPreset, PaperSettings) {
  auto p = AttentionPresetNamed("paper");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->train_size, 60000);
  EXPECT_EQ(p->epochs, 70);
  EXPECT_EQ(p->batch, 128);
  EXPECT_DOUBLE_EQ(p->lr, 1e-4);
  EXPECT_DOUBLE_EQ(p->source_width, 1.0);
  EXPECT_EQ(p->source_hidden, 512);
  EXPECT_EQ(p->data.canvas, 100);
  EXPECT_EQ(p->data.distractors, 8);
  EXPECT_FALSE(AttentionPresetNamed("fast").ok());
}

TEST(AttentionPreset, OverridesAreCheckedAndNamed) {
  auto p = AttentionPresetNamed("default");
  ASSERT_TRUE(p.ok());
  AttentionFlagOverrides o;
  o.methods = "sparse8,ram";
  EXPECT_EQ(p->data.canvas, 60);  // the default preset: 60 x 60, 4 distractors
  EXPECT_EQ(p->data.distractors, 4);
  o.canvas = 100;
  o.distractors = 8;
  ASSERT_TRUE(ApplyAttentionOverrides(o, &*p).ok());
  EXPECT_EQ(p->methods, (std::vector<std::string>{"sparse8", "ram"}));
  EXPECT_EQ(p->data.canvas, 100);
  auto message = [](AttentionFlagOverrides bad) {
    AttentionPreset q;
    return std::string(ApplyAttentionOverrides(bad, &q).message());
  };
  AttentionFlagOverrides bad;
  bad.methods = "sparse1,glimpse";
  EXPECT_EQ(message(bad),
            "--methods must be sparse1, sparse8, ram, convnet, oracle and/or oracle_sampled, got "
            "'glimpse'");
  bad = {};
  bad.train_size = 0;
  EXPECT_EQ(message(bad), "--train_size must be in [1, 60000], got 0");
  bad = {};
  bad.batch = 7000;
  EXPECT_EQ(message(bad), "--batch must be in [1, train_size = 6000], got 7000");
  bad = {};
  bad.canvas = 20;
  EXPECT_EQ(message(bad), "--canvas must be in [32, 255], got 20");
  bad = {};
  bad.box_penalty = NAN;
  EXPECT_EQ(message(bad), "--box_penalty must be a finite number >= 0, got nan");
  // NaN is a value, not "unset": refused, never replaced by the preset's.
  bad = {};
  bad.lr = NAN;
  EXPECT_EQ(message(bad), "--lr must be > 0, got nan");
  bad.lr = 0;
  EXPECT_EQ(message(bad), "--lr must be > 0, got 0");
  bad = {};
  bad.source_width = NAN;
  EXPECT_EQ(message(bad), "--source_width must be in (0, 4], got nan");
  bad = {};
  bad.initial_variance = NAN;
  EXPECT_EQ(message(bad), "--initial_variance must be 0 (the paper's) or > 0.1 px^2, got nan");
  bad = {};
  bad.ram_location_std = 0;
  EXPECT_EQ(message(bad), "--ram_location_std must be in (0, 2], got 0");
  bad.ram_location_std = NAN;
  EXPECT_EQ(message(bad), "--ram_location_std must be in (0, 2], got nan");
  bad = {};
  bad.ram_location_std_end = 3;
  EXPECT_EQ(message(bad), "--ram_location_std_end must be 0 (constant) or in (0, 2], got 3");
  bad = {};
  bad.ram_init = "xavier";
  EXPECT_EQ(message(bad), "--ram_init must be irnn or default, got xavier");
  bad = {};
  bad.ram_policy = "core";
  EXPECT_EQ(message(bad), "--ram_policy must be head or all, got core");
  bad = {};
  bad.ram_reinforce_weight = INFINITY;
  EXPECT_EQ(message(bad), "--ram_reinforce_weight must be a finite number >= 0, got inf");
  bad = {};
  bad.ram_samples = 0;
  EXPECT_EQ(message(bad), "--ram_samples must be in [1, 64], got 0");
  bad = {};
  bad.ram_eval_samples = 65;
  EXPECT_EQ(message(bad), "--ram_eval_samples must be in [1, 64], got 65");
  bad = {};
  bad.glimpse_eval_samples = 65;
  EXPECT_EQ(message(bad), "--glimpse_eval_samples must be in [0, 64], got 65");
  bad = {};
  bad.ram_reward = "accuracy";
  EXPECT_EQ(message(bad), "--ram_reward must be correct or log_likelihood, got accuracy");
  bad = {};
  bad.lr_decay_epoch = 3;  // the default preset has 3 epochs
  EXPECT_EQ(message(bad), "--lr_decay_epoch must be 0 (none) or below epochs = 3, got 3");
  bad = {};
  bad.lr_decay_factor = 0;
  EXPECT_EQ(message(bad), "--lr_decay_factor must be in (0, 1], got 0");
  bad.lr_decay_factor = NAN;
  EXPECT_EQ(message(bad), "--lr_decay_factor must be in (0, 1], got nan");
  bad = {};
  bad.classifier_hidden = 0;
  EXPECT_EQ(message(bad), "--classifier_hidden must be >= 1, got 0");
  // Set ones are applied; unset (negative) ones keep the preset's.
  AttentionFlagOverrides set;
  set.warmup_steps = 0;
  set.box_penalty = 0;
  set.ram_location_std = 0.2;
  set.ram_init = "default";
  set.ram_policy = "all";
  set.ram_reinforce_weight = 0.1;
  set.ram_location_std_end = 0.1;
  set.ram_samples = 4;
  set.ram_reward = "log_likelihood";
  set.ram_eval_samples = 1;
  set.glimpse_eval_samples = 0;
  set.classifier_hidden = 64;
  ASSERT_TRUE(ApplyAttentionOverrides(set, &*p).ok());
  EXPECT_EQ(p->classifier_hidden, 64);
  EXPECT_EQ(p->warmup_steps, 0);
  EXPECT_EQ(p->box_penalty, 0.0);
  EXPECT_EQ(p->ram_location_std, 0.2);
  EXPECT_EQ(p->ram_init, "default");
  EXPECT_EQ(p->ram_policy, "all");
  EXPECT_EQ(p->ram_reinforce_weight, 0.1);
  EXPECT_EQ(p->ram_location_std_end, 0.1);
  EXPECT_EQ(p->ram_samples, 4);
  EXPECT_EQ(p->ram_reward, "log_likelihood");
  EXPECT_EQ(p->ram_eval_samples, 1);
  EXPECT_EQ(p->glimpse_eval_samples, 0);
  auto d = AttentionPresetNamed("default");
  ASSERT_TRUE(ApplyAttentionOverrides({}, &*d).ok());
  EXPECT_EQ(d->warmup_steps, 200);
  EXPECT_EQ(d->classifier_hidden, 128);  // the paper's, both presets
  EXPECT_EQ(d->box_penalty, 0.01);
  EXPECT_EQ(d->ram_location_std, 0.4);
  EXPECT_EQ(d->ram_init, "irnn");
  EXPECT_EQ(d->ram_policy, "head");
  EXPECT_EQ(d->ram_reinforce_weight, 1.0);
  EXPECT_EQ(d->ram_location_std_end, 0.0);
  EXPECT_EQ(d->ram_samples, 8);
  EXPECT_EQ(d->ram_reward, "correct");
  EXPECT_EQ(d->ram_eval_samples, 8);
  EXPECT_EQ(d->glimpse_eval_samples, 1);
}

data::ClutteredSet TinySet(int64_t n, int64_t stream) {
  at::manual_seed(stream);
  const at::Tensor digits = at::randint(0, 256, {30, 28, 28}, at::kLong).to(at::kByte);
  data::ClutterOptions o;
  o.canvas = 32;
  o.distractors = 2;
  auto s = data::MakeCluttered(digits, at::arange(30, at::kLong) % 10, n, o, stream);
  EXPECT_TRUE(s.ok());
  return *s;
}

// Presets and data for tiny runs: 32 x 32, 2 distractors, two epochs of
// two batches, a 16-unit source network.
AttentionPreset TinyPreset() {
  AttentionPreset p;
  p.data.canvas = 32;
  p.data.distractors = 2;
  p.train_size = 32;
  p.val_size = 16;
  p.test_size = 16;
  p.epochs = 2;
  p.batch = 16;
  p.source_hidden = 16;
  return p;
}

AttentionData TinyData() { return {TinySet(32, 0), TinySet(16, 1), TinySet(16, 2)}; }

TEST(AttentionLearningRate, WarmupThenConstantThenStepDecay) {
  AttentionPreset p;
  p.lr = 1e-3;
  p.warmup_steps = 4;
  p.epochs = 10;
  const int64_t per_epoch = 5;
  // No decay: 1/4, 2/4, 3/4 of lr, then lr to the end.
  EXPECT_DOUBLE_EQ(AttentionLearningRate(p, 0, per_epoch), 0.25e-3);
  EXPECT_DOUBLE_EQ(AttentionLearningRate(p, 2, per_epoch), 0.75e-3);
  EXPECT_DOUBLE_EQ(AttentionLearningRate(p, 3, per_epoch), 1e-3);
  EXPECT_DOUBLE_EQ(AttentionLearningRate(p, 49, per_epoch), 1e-3);
  // Decay from epoch 6 (step 30) by 0.1: step 29 still lr, step 30 on lr / 10.
  AttentionFlagOverrides o;
  o.epochs = 10;
  o.lr_decay_epoch = 6;
  ASSERT_TRUE(ApplyAttentionOverrides(o, &p).ok());
  EXPECT_EQ(p.lr_decay_factor, 0.1);  // the default factor
  EXPECT_DOUBLE_EQ(AttentionLearningRate(p, 29, per_epoch), 1e-3);
  EXPECT_DOUBLE_EQ(AttentionLearningRate(p, 30, per_epoch), 1e-4);
  EXPECT_DOUBLE_EQ(AttentionLearningRate(p, 49, per_epoch), 1e-4);
  // Warmup and decay multiply; no warmup: lr from step 0.
  p.lr_decay_epoch = 1;
  EXPECT_DOUBLE_EQ(AttentionLearningRate(p, 5, per_epoch), 1e-4);
  EXPECT_DOUBLE_EQ(AttentionLearningRate(p, 4, per_epoch), 1e-3);
  p.warmup_steps = 0;
  EXPECT_DOUBLE_EQ(AttentionLearningRate(p, 0, per_epoch), 1e-3);
  EXPECT_NE(DescribeAttentionPreset(p).find("times 0.1 from epoch 1"), std::string::npos);
}

TEST(DescribeAttentionPreset, NamesEverySetting) {
  auto p = AttentionPresetNamed("paper");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(DescribeAttentionPreset(*p),
            "100x100 canvas, 8 distractors, 60000 training images x 70 epochs, batch 128, Adam lr "
            "0.0001 (warmup 200 steps), box penalty 0.01, RAM location std 0.4, init irnn, policy "
            "head and REINFORCE weight 1, 8 trajectories per image, reward correct, evaluation over "
            "8 trajectories, source network width 1 / hidden 512, classifier hidden 128, glimpse "
            "variance the paper's, glimpses evaluated as one sampled draw, 5000 validation and "
            "10000 test images");
  p->lr_decay_epoch = 40;
  p->ram_location_std_end = 0.1;
  p->ram_eval_samples = 1;
  p->initial_variance = 2;
  p->glimpse_eval_samples = 8;
  p->fresh_clutter = true;
  EXPECT_EQ(DescribeAttentionPreset(*p),
            "100x100 canvas, 8 distractors, 60000 training images x 70 epochs, batch 128, Adam lr "
            "0.0001 (warmup 200 steps, times 0.1 from epoch 40), box penalty 0.01, RAM location "
            "std 0.4 falling to 0.1, init irnn, policy head and REINFORCE weight 1, 8 trajectories "
            "per image, reward correct, evaluation at the means, source network width 1 / hidden "
            "512, classifier hidden 128, glimpse variance from 2 px^2, glimpses evaluated as the "
            "mean of 8 sampled draws, 5000 validation and 10000 test images, new clutter every "
            "epoch");
  p->glimpse_eval_samples = 0;
  EXPECT_NE(DescribeAttentionPreset(*p).find("glimpses evaluated at rounded positions"),
            std::string::npos);
}

TEST(RunAttention, EveryMethodRunsWritesAndResumes) {
  const AttentionPreset p = TinyPreset();
  const AttentionData d = TinyData();
  const std::string dir = testing::ScratchDir("attention_runs");
  for (const std::string& method : AttentionMethods()) {
    auto r = RunAttention(method, p, d, 0, dir, /*resume=*/true);
    ASSERT_TRUE(r.ok()) << method << ": " << r.status();
    EXPECT_EQ(r->steps_done, 4) << method;
    EXPECT_GE(r->test_error, 0.0);
    EXPECT_LE(r->test_error, 1.0);
    std::ifstream csv(dir + "/" + method + ".csv");
    std::string header;
    std::getline(csv, header);
    EXPECT_EQ(header, "step,loss,batch_error,val_error") << method;
    // The best model, restored, scores the smallest validation error logged.
    double min_val = 2;
    for (std::string line; std::getline(csv, line);) {
      const std::string last = line.substr(line.rfind(',') + 1);
      if (!last.empty()) min_val = std::min(min_val, std::stod(last));
    }
    EXPECT_DOUBLE_EQ(r->best_validation_error, min_val) << method;
    EXPECT_LE(r->best_validation_error, r->validation_error) << method;
    EXPECT_GE(r->best_test_error, 0.0);
    EXPECT_LE(r->best_test_error, 1.0);
    std::ifstream fig(dir + "/" + method + "_glimpses.csv");
    int images = 0, boxes = 0;
    for (std::string line; std::getline(fig, line);) {
      images += line.rfind("image,", 0) == 0;
      boxes += line.rfind("box,", 0) == 0;
    }
    EXPECT_EQ(images, 8) << method;
    const int expected_boxes = method == "sparse1" || method == "oracle" ||
                                       method == "oracle_sampled"
                                   ? 8
                               : method == "sparse8" || method == "ram"  ? 64
                                                                         : 0;
    EXPECT_EQ(boxes, expected_boxes) << method;
    // A second run resumes at the end: same errors, no further steps.
    auto again = RunAttention(method, p, d, 0, dir, /*resume=*/true);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->steps_done, 4);
    EXPECT_DOUBLE_EQ(again->validation_error, r->validation_error) << method;
  }
  const auto unknown = RunAttention("glimpse", p, d, 0, dir, false);
  EXPECT_EQ(unknown.status().message(),
            "method must be sparse1, sparse8, ram, convnet, oracle or oracle_sampled, got "
            "'glimpse'");
}

TEST(RunAttention, ClassifierHiddenReachesTheSparseModelsAndOracles) {
  AttentionPreset p = TinyPreset();
  const AttentionData d = TinyData();
  for (const std::string method : {"sparse1", "oracle", "oracle_sampled"}) {
    p.classifier_hidden = 128;
    auto wide = RunAttention(method, p, d, 0, testing::ScratchDir("attention_wide"), false);
    p.classifier_hidden = 3;
    auto narrow = RunAttention(method, p, d, 0, testing::ScratchDir("attention_narrow"), false);
    ASSERT_TRUE(wide.ok() && narrow.ok()) << method;
    EXPECT_NE(wide->final_loss, narrow->final_loss) << method;
  }
}

TEST(RunAttention, FreshClutterTrainsOnNewImagesEachEpochDeterministically) {
  AttentionPreset p = TinyPreset();
  AttentionData d = TinyData();
  const std::string dir = testing::ScratchDir("attention_fresh");
  auto fixed = RunAttention("convnet", p, d, 0, dir, /*resume=*/false);
  ASSERT_TRUE(fixed.ok());
  p.fresh_clutter = true;
  auto missing = RunAttention("convnet", p, d, 0, dir, false);
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(std::string(missing.status().message()).find("--fresh_clutter needs"),
            std::string::npos);
  at::manual_seed(0);
  d.train_digits = at::randint(0, 256, {30, 28, 28}, at::kLong).to(at::kByte);
  d.train_digit_labels = at::arange(30, at::kLong) % 10;
  auto fresh = RunAttention("convnet", p, d, 0, dir, false);
  auto again = RunAttention("convnet", p, d, 0, dir, false);
  ASSERT_TRUE(fresh.ok() && again.ok());
  EXPECT_NE(fresh->final_loss, fixed->final_loss);  // epoch 1 saw other images
  EXPECT_EQ(fresh->final_loss, again->final_loss);  // seeded by the epoch
  EXPECT_EQ(fresh->validation_error, again->validation_error);
}

TEST(RunAttention, TrainErrorIsTheErrorOnTheTrainingImages) {
  AttentionPreset p = TinyPreset();
  AttentionData d = TinyData();
  d.validation = d.train;  // so the training-set error must equal the validation error
  const std::string dir = testing::ScratchDir("attention_train_error");
  auto off = RunAttention("convnet", p, d, 0, dir, /*resume=*/false);
  ASSERT_TRUE(off.ok());
  EXPECT_TRUE(std::isnan(off->train_error));  // not measured unless asked
  EXPECT_EQ(AttentionSummaryMarkdown(p, {*off}).find("training-set error"), std::string::npos);
  AttentionFlagOverrides o;
  o.train_error = true;
  ASSERT_TRUE(ApplyAttentionOverrides(o, &p).ok());
  auto on = RunAttention("convnet", p, d, 0, dir, /*resume=*/false);
  ASSERT_TRUE(on.ok());
  EXPECT_DOUBLE_EQ(on->train_error, on->validation_error);
  EXPECT_NE(AttentionSummaryMarkdown(p, {*on}).find("training-set error"), std::string::npos);
  EXPECT_EQ(AttentionSummaryRow(*on).size(), AttentionSummaryColumns().size());
  const std::vector<std::string> columns = AttentionSummaryColumns();
  const size_t col = std::find(columns.begin(), columns.end(), "train_error") - columns.begin();
  ASSERT_LT(col, columns.size());
  EXPECT_EQ(AttentionSummaryRow(*on)[col], absl::StrCat(on->train_error));
}

TEST(RunAttention, LocalisationSplitsTheTestError) {
  const AttentionPreset p = TinyPreset();
  const AttentionData d = TinyData();
  const std::string dir = testing::ScratchDir("attention_localisation");
  for (const std::string& method : AttentionMethods()) {
    auto r = RunAttention(method, p, d, 0, dir, /*resume=*/false);
    ASSERT_TRUE(r.ok()) << method;
    if (method == "convnet") {  // no boxes
      EXPECT_TRUE(std::isnan(r->box_hit_rate));
      continue;
    }
    if (method == "oracle" || method == "oracle_sampled") {
      EXPECT_EQ(r->box_hit_rate, 1.0);  // its box is centred on the digit
    }
    ASSERT_GE(r->box_hit_rate, 0.0) << method;
    ASSERT_LE(r->box_hit_rate, 1.0) << method;
    // The two groups' errors add up to the test error.
    const double n = d.test.images.size(0), hits = r->box_hit_rate * n;
    const double wrong = (hits > 0 ? r->error_given_hit * hits : 0) +
                         (hits < n ? r->error_given_miss * (n - hits) : 0);
    EXPECT_NEAR(wrong, r->test_error * n, 1e-9) << method;
  }
}

TEST(LoadAttentionData, MissingFilesNameTheCommandThatMakesThem) {
  const std::string dir = testing::ScratchDir("attention_no_data");
  AttentionPreset p = TinyPreset();
  const auto data = LoadAttentionData(dir, p, /*generate=*/false);
  ASSERT_FALSE(data.ok());
  const std::string message(data.status().message());
  EXPECT_NE(message.find(dir), std::string::npos) << message;
  EXPECT_NE(message.find("bazel run //datasets:make_cluttered_mnist -- --canvas=32"),
            std::string::npos)
      << message;
}

TEST(RunAttention, RamWithSeveralTrajectoriesPerImage) {
  AttentionPreset p = TinyPreset();
  const AttentionData d = TinyData();
  const std::string dir = testing::ScratchDir("attention_ram_samples");
  p.ram_samples = 1;
  auto one = RunAttention("ram", p, d, 0, testing::ScratchDir("attention_ram_one"), false);
  p.ram_samples = 3;
  p.ram_reward = "log_likelihood";
  auto three = RunAttention("ram", p, d, 0, dir, /*resume=*/false);
  ASSERT_TRUE(one.ok() && three.ok()) << three.status();
  EXPECT_EQ(three->steps_done, 4);
  EXPECT_TRUE(std::isfinite(three->final_loss));
  EXPECT_NE(three->final_loss, one->final_loss);  // other batches and losses
  // Evaluations over sampled trajectories are seeded: a resumed run (no
  // further steps) scores the same; at the means (one trajectory) too.
  p.ram_eval_samples = 5;
  auto sampled = RunAttention("ram", p, d, 0, dir, /*resume=*/true);
  auto sampled_again = RunAttention("ram", p, d, 0, dir, /*resume=*/true);
  ASSERT_TRUE(sampled.ok() && sampled_again.ok());
  EXPECT_EQ(sampled->steps_done, 4);
  EXPECT_EQ(sampled->validation_error, sampled_again->validation_error);
  EXPECT_EQ(sampled->test_error, sampled_again->test_error);
}

}  // namespace
}  // namespace experiments
}  // namespace indexgrad
