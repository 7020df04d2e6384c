#include "experiments/mask_recovery_flags.h"

#include <algorithm>
#include <cmath>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "baselines/reinforce_mask.h"
#include "datasets/idx.h"
#include "experiments/common/csv.h"
#include "experiments/common/device.h"
#include "experiments/mask_decoder_flags.h"
#include "experiments/mask_decoder_training.h"

ABSL_FLAG(std::string, operators, "gaussian,gumbel,gumbel_net,mlp,reinforce",
          "comma-separated mask operators: gaussian, gumbel (a learned logit table), "
          "gumbel_net (the paper's conv network for the logits), mlp (its decoder "
          "is loaded from --decoder_path, or trained first when missing), "
          "reinforce (the REINFORCE baseline over pixel positions)");
ABSL_FLAG(std::string, targets, "left_half,random,disc,digit",
          "comma-separated targets: left_half, random, disc, digit, or "
          "file:PATH, a mask image of --size x --size pixels (PNG, PGM, BMP, "
          "...; grey values at or above half the range are on)");
ABSL_FLAG(int64_t, size, 32, "mask height and width (>= 28 for digit)");
ABSL_FLAG(int64_t, random_pixels, 256, "pixels on in the random target");
ABSL_FLAG(int64_t, seeds, 3, "runs per (operator, target)");
ABSL_FLAG(int64_t, steps, 2000, "optimisation steps per run");
ABSL_FLAG(int64_t, eval_every, 50, "steps between IoU evaluations");
ABSL_FLAG(int64_t, snapshots, 4, "mask snapshots per run for the figure");
ABSL_FLAG(double, lr, 0.0,
          "Adam learning rate of the Gaussian operator (pixels); 0: 0.1 x --size / 32, "
          "at least 0.1 (the points travel further on larger images)");
ABSL_FLAG(double, lr_end, 0.1,
          "Gaussian operator: the learning rate falls geometrically from --lr to this over "
          "the stddev's anneal (--stddev_anneal_fraction), so that narrow points take "
          "sub-pixel steps at every --size (no fall when --lr is lower)");
ABSL_FLAG(double, point_eps, 1e-16,
          "Adam's epsilon for the Gaussian and MLP operators' points: far below their "
          "gradients, which the MSE's mean over --size^2 pixels makes about 1e-9 for a wide "
          "point at 128 x 128 (Adam's usual 1e-8 would stop such a point)");
ABSL_FLAG(double, gumbel_lr, 0.05, "Adam learning rate of the Gumbel operator's logits");
ABSL_FLAG(std::string, gumbel_lr_schedule, "cosine",
          "Gumbel operator (the logit table): its learning rate, constant or cosine (from "
          "--gumbel_lr to 0 at --steps)");
ABSL_FLAG(bool, gumbel_endgame, true,
          "Gumbel operator (the logit table): once the noise has faded, channels on a pixel "
          "the loss wants dimmer take the mask's gradient as their logits' gradient, the "
          "logits' Adam moments restart and the learning rate follows a new cosine from "
          "--gumbel_endgame_lr to 0 (diff_masks::GumbelMaskOptions::endgame)");
ABSL_FLAG(double, gumbel_endgame_lr, 0.05,
          "Gumbel operator, with --gumbel_endgame: the learning rate when the noise has "
          "faded, falling along a cosine to 0 at --steps");
ABSL_FLAG(double, gumbel_net_lr, 0.01, "Adam learning rate of the Gumbel operator's network");
ABSL_FLAG(double, temperature, 0.5, "Gumbel operators: softmax temperature");
ABSL_FLAG(double, noise_fraction, 0.8,
          "Gumbel operators: fraction of steps over which the Gumbel noise fades to 0");
ABSL_FLAG(double, mlp_lr, 0.003,
          "Adam learning rate of the MLP operator's points (in [0, 1] units)");
ABSL_FLAG(double, reinforce_lr, 0.1, "Adam learning rate of the REINFORCE baseline");
ABSL_FLAG(double, stddev_start, 0.0,
          "Gaussian and MLP operators: initial std (pixels); 0: a quarter of --size");
ABSL_FLAG(double, stddev_end, 0.15, "Gaussian and MLP operators: final std (pixels)");
ABSL_FLAG(int64_t, rescue_every, 25,
          "Gaussian and MLP operators: steps between rescues of stuck points (a second "
          "point on one pixel, or a point with less than --rescue_peak of its mass on any "
          "pixel, gets a wide stddev again and fresh Adam moments), once the stddev has "
          "reached --stddev_end (0: none)");
ABSL_FLAG(int64_t, rescue_steps, 100,
          "Gaussian and MLP operators: steps a rescued point anneals over");
ABSL_FLAG(double, rescue_stddev, 0.0,
          "Gaussian and MLP operators: a rescued point's starting stddev (pixels; 0: the "
          "operator's starting stddev: a quarter of the side, the MLP decoder's widest)");
ABSL_FLAG(double, rescue_peak, 0.5,
          "Gaussian and MLP operators: rescue points whose fullest pixel holds less than "
          "this share of their mass (0: doubled points only)");
ABSL_FLAG(double, stddev_anneal_fraction, 0.4,
          "Gaussian and MLP operators: fraction of steps over which the std anneals");
ABSL_FLAG(std::string, data_dir, "",
          "folder with mnist/ IDX files for the digit target (default "
          "$INDEXGRAD_DATA_DIR, else <workspace>/data)");
ABSL_FLAG(std::string, out_dir, "",
          "output folder (default <workspace>/out/mask_recovery)");
ABSL_FLAG(bool, resume, true, "resume runs from their checkpoints");
ABSL_FLAG(bool, plot, true, "draw masks.png with tools/plot.py");

namespace indexgrad {
namespace experiments {
namespace {

absl::Status Invalid(const std::string& message) {
  return absl::InvalidArgumentError(message);
}

}  // namespace

int64_t SeedsFromFlags() { return absl::GetFlag(FLAGS_seeds); }
bool PlotFromFlags() { return absl::GetFlag(FLAGS_plot); }

namespace {

// Device, size, steps, evaluations, snapshots, resume.
absl::Status RunSettingsFromFlags(MaskRecoverySetup& s) {
  absl::StatusOr<torch::Device> device = DeviceFromFlag();
  if (!device.ok()) return device.status();
  s.device = *device;
  s.size = absl::GetFlag(FLAGS_size);
  s.steps = absl::GetFlag(FLAGS_steps);
  if (s.size < 2) return Invalid(absl::StrCat("--size must be >= 2, got ", s.size));
  if (s.steps < 1) return Invalid(absl::StrCat("--steps must be >= 1, got ", s.steps));
  if (absl::GetFlag(FLAGS_seeds) < 1) {
    return Invalid(absl::StrCat("--seeds must be >= 1, got ", absl::GetFlag(FLAGS_seeds)));
  }
  s.eval_every = absl::GetFlag(FLAGS_eval_every);
  if (s.eval_every < 1) return Invalid(absl::StrCat("--eval_every must be >= 1, got ", s.eval_every));
  s.random_pixels = absl::GetFlag(FLAGS_random_pixels);
  s.resume = absl::GetFlag(FLAGS_resume);
  s.snap_every = std::max<int64_t>(
      1, s.steps / std::max<int64_t>(1, absl::GetFlag(FLAGS_snapshots)));
  return absl::OkStatus();
}

// Each operator's learning rate and schedule settings.
absl::Status LearningRatesFromFlags(MaskRecoverySetup& s) {
  double gaussian_lr = absl::GetFlag(FLAGS_lr);
  if (gaussian_lr == 0) gaussian_lr = 0.1 * std::max(1.0, static_cast<double>(s.size) / 32);
  s.learning_rates = {{"gaussian", gaussian_lr},
                      {"gumbel", absl::GetFlag(FLAGS_gumbel_lr)},
                      {"gumbel_net", absl::GetFlag(FLAGS_gumbel_net_lr)},
                      {"mlp", absl::GetFlag(FLAGS_mlp_lr)},
                      {"reinforce", absl::GetFlag(FLAGS_reinforce_lr)}};
  for (const auto& [op, lr] : s.learning_rates) {
    if (!(lr > 0) || !std::isfinite(lr)) {
      const std::string flag = op == "gaussian" ? "lr" : op + "_lr";
      return Invalid(absl::StrCat("--", flag, " must be a finite number > 0, got ", lr));
    }
  }
  const std::string schedule = absl::GetFlag(FLAGS_gumbel_lr_schedule);
  if (schedule != "constant" && schedule != "cosine") {
    return Invalid(absl::StrCat("--gumbel_lr_schedule must be constant or cosine, got '",
                                schedule, "'"));
  }
  s.settings.gumbel_cosine = schedule == "cosine";
  s.settings.gumbel_endgame_lr = absl::GetFlag(FLAGS_gumbel_endgame_lr);
  if (!(s.settings.gumbel_endgame_lr > 0) || !std::isfinite(s.settings.gumbel_endgame_lr)) {
    return Invalid(absl::StrCat("--gumbel_endgame_lr must be a finite number > 0, got ",
                                s.settings.gumbel_endgame_lr));
  }
  s.settings.lr_end = absl::GetFlag(FLAGS_lr_end);
  s.settings.point_eps = absl::GetFlag(FLAGS_point_eps);
  if (!(s.settings.lr_end > 0) || !std::isfinite(s.settings.lr_end)) {
    return Invalid(absl::StrCat("--lr_end must be a finite number > 0, got ", s.settings.lr_end));
  }
  if (!(s.settings.point_eps >= 0) || !std::isfinite(s.settings.point_eps)) {
    return Invalid(absl::StrCat("--point_eps must be a finite number >= 0, got ", s.settings.point_eps));
  }
  return absl::OkStatus();
}

// --operators, --targets (and the MNIST digit when a target needs it).
absl::Status OperatorsAndTargetsFromFlags(MaskRecoverySetup& s) {
  double stddev_start = absl::GetFlag(FLAGS_stddev_start);
  if (stddev_start < 0) {
    return Invalid(absl::StrCat("--stddev_start must be >= 0 (0: automatic), got ",
                                stddev_start));
  }
  baselines::AddReinforceMaskOperator(s.factory);
  for (absl::string_view o : absl::StrSplit(absl::GetFlag(FLAGS_operators), ',')) {
    if (!s.factory.Has(std::string(o))) {
      return Invalid(absl::StrCat("--operators: '", o, "' is not available (known: ",
                                  absl::StrJoin(s.factory.Names(), ", "), ")"));
    }
    s.ops.emplace_back(o);
  }
  for (absl::string_view t : absl::StrSplit(absl::GetFlag(FLAGS_targets), ',')) {
    auto target = ParseMaskTarget(t, s.size);
    if (!target.ok()) return Invalid(absl::StrCat("--targets: ", target.status().message()));
    s.targets.push_back(*target);
  }
  for (const MaskTarget& t : s.targets) {
    if (t.mask.defined() || t.kind != diff_masks::TargetKind::kDigit) continue;
    std::string data_dir = UserPath(absl::GetFlag(FLAGS_data_dir));
    if (data_dir.empty()) data_dir = data::DefaultDataDir();
    auto test = data::LoadImageSet(data_dir, "mnist", data::Split::kTest);
    if (!test.ok()) return test.status();
    s.digit = test->images[0];  // the first test digit, fixed
  }
  s.settings.stddev_start = stddev_start;
  return absl::OkStatus();
}

// The operators' own settings; the MLP operator's decoder, loaded or trained.
absl::Status OperatorSettingsFromFlags(MaskRecoverySetup& s) {
  s.settings.stddev_end = absl::GetFlag(FLAGS_stddev_end);
  s.settings.stddev_anneal_fraction = absl::GetFlag(FLAGS_stddev_anneal_fraction);
  s.settings.rescue_every = absl::GetFlag(FLAGS_rescue_every);
  s.settings.rescue_steps = absl::GetFlag(FLAGS_rescue_steps);
  s.settings.rescue_stddev = absl::GetFlag(FLAGS_rescue_stddev);
  s.settings.rescue_peak = absl::GetFlag(FLAGS_rescue_peak);
  s.settings.temperature = absl::GetFlag(FLAGS_temperature);
  s.settings.noise_fraction = absl::GetFlag(FLAGS_noise_fraction);
  s.settings.gumbel_endgame = absl::GetFlag(FLAGS_gumbel_endgame);
  if (std::find(s.ops.begin(), s.ops.end(), "mlp") != s.ops.end()) {
    auto loaded = LoadOrTrainMaskDecoder(s.size, s.size,
                                         MaskDecoderTrainingFromFlags(s.size, s.size));
    if (!loaded.ok()) return loaded.status();
    s.settings.decoder = *loaded;  // shared by the runs; only points train
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<MaskRecoverySetup> MaskRecoverySetupFromFlags() {
  MaskRecoverySetup s;
  for (absl::Status (*part)(MaskRecoverySetup&) :
       {RunSettingsFromFlags, LearningRatesFromFlags, OperatorsAndTargetsFromFlags,
        OperatorSettingsFromFlags}) {
    if (absl::Status st = part(s); !st.ok()) return st;
  }
  s.out_dir = OutputDir(absl::GetFlag(FLAGS_out_dir), "mask_recovery");
  for (const char* sub : {"/runs", "/masks"}) {
    if (auto st = MakeDirs(s.out_dir + sub); !st.ok()) return st;
  }
  return s;
}

}  // namespace experiments
}  // namespace indexgrad
