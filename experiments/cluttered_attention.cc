// Attention on cluttered MNIST (Bloem et al. 2018 section 3.2, Table 1):
// sparse-hyperlayer glimpses (1 x 32 x 32 and 8 x 12 x 12) against the
// Recurrent Attention Model and a plain ConvNet, same data and budget.
// Writes, under --out_dir:
//   runs/<method>.csv            per step: loss, batch error; per evaluation:
//                                validation error
//   runs/<method>.ckpt           checkpoint (a rerun resumes)
//   runs/<method>_glimpses.csv   first 8 test images, boxes, glimpse contents
//   summary.csv, summary.md      validation and test error, time per epoch
//   attention.png, glimpses.png  tools/plot.py attention (curves; Figure 4)
//
//   bazel run //experiments:cluttered_attention                    # minutes, CPU
//   bazel run //experiments:cluttered_attention -- --preset=paper  # the paper's runs
// The cluttered data is generated into the data folder on first use
// (datasets/cluttered_mnist.h; about 3 s, 750 MB for 100 x 100).
#include <cstdio>
#include <fstream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "datasets/cluttered_mnist.h"
#include "experiments/cluttered_attention_run.h"
#include "experiments/common/csv.h"
#include "experiments/common/device.h"
#include "experiments/common/main.h"
#include "experiments/common/summary.h"
#include "experiments/common/threads.h"

ABSL_FLAG(std::string, preset, "default",
          "default: 60 x 60 canvas, 4 distractors, 6,000 training images x 3 epochs, a "
          "quarter-width source network, lr 1e-3 (minutes on 2 CPU cores, not converged); "
          "paper: 100 x 100, 8 distractors, 60,000 x 70 epochs, batch 128, lr 1e-4, the "
          "paper's source network. Explicit flags override the preset.");
ABSL_FLAG(std::string, methods, "", "comma-separated: sparse1, sparse8, ram, convnet, oracle, oracle_sampled (all if empty)");
ABSL_FLAG(int64_t, canvas, -1, "cluttered canvas side (preset: default 60, paper 100)");
ABSL_FLAG(int64_t, distractors, -1, "distractors per image (preset: default 4, paper 8)");
ABSL_FLAG(int64_t, train_size, -1, "training images, first of the 60,000 (preset if < 0)");
ABSL_FLAG(int64_t, val_size, -1, "validation images, of 5,000 (preset if < 0)");
ABSL_FLAG(int64_t, test_size, -1, "test images, of 10,000 (preset if < 0)");
ABSL_FLAG(int64_t, epochs, -1, "epochs (preset if < 0)");
ABSL_FLAG(int64_t, batch, -1, "batch size (preset if < 0)");
ABSL_FLAG(double, lr, -1, "Adam learning rate (preset if < 0)");
ABSL_FLAG(double, box_penalty, -1,
          "sparse models: weight of the penalty on raw box values past +-4 (preset if < 0)");
ABSL_FLAG(int64_t, warmup_steps, -1,
          "steps over which the learning rate rises linearly to --lr (preset if < 0)");
ABSL_FLAG(int64_t, lr_decay_epoch, -1,
          "from this epoch on the learning rate is --lr times --lr_decay_factor; 0: no decay "
          "(preset if < 0; both presets: 0)");
ABSL_FLAG(double, lr_decay_factor, -1, "see --lr_decay_epoch (preset if < 0; both presets: 0.1)");
ABSL_FLAG(double, source_width, -1, "source network channel multiplier, 1 = the paper's (preset if < 0)");
ABSL_FLAG(int64_t, source_hidden, -1, "source network linear units, 512 = the paper's (preset if < 0)");
ABSL_FLAG(int64_t, classifier_hidden, -1,
          "sparse models' and oracles' classifier units, 128 = the paper's (preset if < 0)");
ABSL_FLAG(double, initial_variance, -1,
          "sparse glimpses' starting variance in px^2; 0: the paper's parametrisation at raw 0 "
          "(preset if < 0)");
ABSL_FLAG(double, ram_location_std, -1,
          "RAM: std of the Gaussian location policy, [-1, 1] image units (preset if < 0: 0.4)");
ABSL_FLAG(double, ram_location_std_end, -1,
          "RAM: if > 0, the policy std falls geometrically from --ram_location_std to this "
          "over the run; 0: constant (preset if < 0: 0)");
ABSL_FLAG(std::string, ram_init, "",
          "RAM: initialisation, irnn (He, identity recurrence) or default (LibTorch's); "
          "preset if empty: irnn");
ABSL_FLAG(std::string, ram_policy, "",
          "RAM: what REINFORCE trains, head (the location head only) or all (also the core "
          "and glimpse networks); preset if empty: head");
ABSL_FLAG(double, ram_reinforce_weight, -1,
          "RAM: weight of the REINFORCE term in the loss (preset if < 0: 1); matters with "
          "--ram_policy=all, where the policy gradient also trains the shared features");
ABSL_FLAG(int64_t, ram_samples, -1,
          "RAM: trajectories per training image; > 1 takes REINFORCE's baseline from the "
          "image's other trajectories (leave one out) instead of the learned one (preset if "
          "< 0: 8)");
ABSL_FLAG(std::string, ram_reward, "",
          "RAM: REINFORCE's reward, correct (1 for a correct class, Mnih et al.) or "
          "log_likelihood (log p(label)); preset if empty: correct");
ABSL_FLAG(int64_t, ram_eval_samples, -1,
          "RAM: > 1 evaluates by averaging the class probabilities of this many sampled "
          "trajectories per image (seeded: every evaluation the same); 1: the policy's means "
          "(preset if < 0: 8)");
ABSL_FLAG(bool, fresh_clutter, false,
          "train every epoch after the first on newly generated clutter (same training "
          "digits; off in both presets: the paper used one fixed set)");
ABSL_FLAG(bool, train_error, false,
          "also report the final model's error on the training images (with --fresh_clutter: "
          "the stored set, epoch 0's)");
ABSL_FLAG(int64_t, glimpse_eval_samples, -1,
          "sparse models: evaluate each glimpse as the mean of this many sampled draws, as in "
          "training; 0: pixels at the rounded positions (preset if < 0: 1)");
ABSL_FLAG(int64_t, evals_per_epoch, -1, "validations per epoch (preset if < 0)");
ABSL_FLAG(int64_t, seed, 0, "random seed of the models and batches");
ABSL_FLAG(bool, generate_data, true, "generate missing cluttered data files");
ABSL_FLAG(std::string, data_dir, "", "data folder (default: $INDEXGRAD_DATA_DIR, else <workspace>/data)");
ABSL_FLAG(std::string, out_dir, "", "output folder (default <workspace>/out/cluttered_attention)");
ABSL_FLAG(bool, resume, true, "resume runs from their checkpoints");
ABSL_FLAG(bool, plot, true, "draw the figures with tools/plot.py");

namespace {

namespace ig = indexgrad;
namespace ex = indexgrad::experiments;

absl::StatusOr<ex::AttentionPreset> PresetFromFlags() {
  absl::StatusOr<ex::AttentionPreset> p = ex::AttentionPresetNamed(absl::GetFlag(FLAGS_preset));
  if (!p.ok()) return p.status();
  ex::AttentionFlagOverrides o;
  o.methods = absl::GetFlag(FLAGS_methods);
  o.canvas = absl::GetFlag(FLAGS_canvas);
  o.distractors = absl::GetFlag(FLAGS_distractors);
  o.train_size = absl::GetFlag(FLAGS_train_size);
  o.val_size = absl::GetFlag(FLAGS_val_size);
  o.test_size = absl::GetFlag(FLAGS_test_size);
  o.epochs = absl::GetFlag(FLAGS_epochs);
  o.batch = absl::GetFlag(FLAGS_batch);
  o.lr = absl::GetFlag(FLAGS_lr);
  o.warmup_steps = absl::GetFlag(FLAGS_warmup_steps);
  o.lr_decay_epoch = absl::GetFlag(FLAGS_lr_decay_epoch);
  o.lr_decay_factor = absl::GetFlag(FLAGS_lr_decay_factor);
  o.box_penalty = absl::GetFlag(FLAGS_box_penalty);
  o.source_width = absl::GetFlag(FLAGS_source_width);
  o.source_hidden = absl::GetFlag(FLAGS_source_hidden);
  o.classifier_hidden = absl::GetFlag(FLAGS_classifier_hidden);
  o.evals_per_epoch = absl::GetFlag(FLAGS_evals_per_epoch);
  o.initial_variance = absl::GetFlag(FLAGS_initial_variance);
  o.ram_location_std = absl::GetFlag(FLAGS_ram_location_std);
  o.ram_location_std_end = absl::GetFlag(FLAGS_ram_location_std_end);
  o.ram_init = absl::GetFlag(FLAGS_ram_init);
  o.ram_policy = absl::GetFlag(FLAGS_ram_policy);
  o.ram_reinforce_weight = absl::GetFlag(FLAGS_ram_reinforce_weight);
  o.ram_samples = absl::GetFlag(FLAGS_ram_samples);
  o.ram_reward = absl::GetFlag(FLAGS_ram_reward);
  o.ram_eval_samples = absl::GetFlag(FLAGS_ram_eval_samples);
  o.glimpse_eval_samples = absl::GetFlag(FLAGS_glimpse_eval_samples);
  o.fresh_clutter = absl::GetFlag(FLAGS_fresh_clutter);
  o.train_error = absl::GetFlag(FLAGS_train_error);
  if (absl::Status st = ex::ApplyAttentionOverrides(o, &*p); !st.ok()) return st;
  return p;
}

absl::Status Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Attention on cluttered MNIST: sparse-hyperlayer glimpses vs RAM vs a ConvNet "
      "(Bloem et al. 2018 section 3.2).");
  absl::ParseCommandLine(argc, argv);
  if (absl::StatusOr<int> threads = ex::ApplyThreadsFlag(); !threads.ok()) {
    return threads.status();
  }
  absl::StatusOr<ex::AttentionPreset> preset = PresetFromFlags();
  if (!preset.ok()) return preset.status();
  const absl::StatusOr<torch::Device> device = ex::DeviceFromFlag();
  if (!device.ok()) return device.status();
  std::string data_dir = ex::UserPath(absl::GetFlag(FLAGS_data_dir));
  if (data_dir.empty()) data_dir = ig::data::DefaultDataDir();
  const absl::StatusOr<ex::AttentionData> data =
      ex::LoadAttentionData(data_dir, *preset, absl::GetFlag(FLAGS_generate_data));
  if (!data.ok()) return data.status();
  const std::string out_dir =
      ex::OutputDir(absl::GetFlag(FLAGS_out_dir), "cluttered_attention");
  if (auto st = ex::MakeDirs(out_dir + "/runs"); !st.ok()) return st;
  auto summary_csv = ex::CsvWriter::Open(out_dir + "/summary.csv", ex::AttentionSummaryColumns());
  if (!summary_csv.ok()) return summary_csv.status();
  std::printf("cluttered_attention: preset %s, %s, output in %s\n",
              absl::GetFlag(FLAGS_preset).c_str(), ex::DescribeAttentionPreset(*preset).c_str(),
              out_dir.c_str());

  std::vector<ex::AttentionRunResult> runs;
  for (const std::string& method : preset->methods) {
    auto r = ex::RunAttention(method, *preset, *data, absl::GetFlag(FLAGS_seed),
                              out_dir + "/runs", absl::GetFlag(FLAGS_resume), *device);
    if (!r.ok()) return r.status();
    summary_csv->TextRow(ex::AttentionSummaryRow(*r));
    runs.push_back(*r);
  }
  const std::string md = ex::AttentionSummaryMarkdown(*preset, runs);
  if (auto st = ex::WriteSummaryMarkdown(out_dir, md); !st.ok()) {
    return st;
  }
  if (absl::GetFlag(FLAGS_plot)) {
    if (auto st = ex::RunPlot("attention", out_dir); !st.ok()) {
      std::fprintf(stderr, "cluttered_attention: %s\n", std::string(st.message()).c_str());
    }
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  return indexgrad::experiments::RunMain("cluttered_attention", Main, argc, argv);
}
