// RAM: the retina against loops, shapes, the policy gradient's sign, the
// learned baseline's variance reduction, clear errors.
#include "baselines/ram.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/testing/expect_error.h"

namespace indexgrad {
namespace baselines {
namespace {

// Average of the side x side square centred (offsets -side/2 .. side -
// side/2 - 1) at pixel (cy, cx), pooled in blocks of `pool`, zeros outside.
double LoopPatchPixel(const at::Tensor& image, int64_t cy, int64_t cx, int64_t side,
                      int64_t pool, int64_t i, int64_t j) {
  const int64_t h = image.size(0), w = image.size(1);
  double sum = 0;
  for (int64_t a = 0; a < pool; ++a) {
    for (int64_t b = 0; b < pool; ++b) {
      const int64_t y = cy - side / 2 + i * pool + a, x = cx - side / 2 + j * pool + b;
      if (y >= 0 && y < h && x >= 0 && x < w) sum += image[y][x].item<double>();
    }
  }
  return sum / double(pool * pool);
}

TEST(Retina, MatchesLoopsAtEveryScaleAndBorder) {
  at::manual_seed(0);
  const int64_t h = 11, w = 9, patch = 2, scales = 3;
  const at::Tensor images = at::rand({3, 1, h, w}, at::kDouble);
  // Centre, a corner, an off-centre point.
  const at::Tensor loc = at::tensor({0.0, 0.0, -1.0, 1.0, 0.3, -0.55}, at::kDouble).view({3, 2});
  const at::Tensor out = Retina(images, loc, patch, scales);
  ASSERT_EQ(out.sizes(), at::IntArrayRef({3, scales, patch, patch}));
  for (int64_t b = 0; b < 3; ++b) {
    const int64_t cy = std::lround((loc[b][0].item<double>() + 1) / 2 * (h - 1));
    const int64_t cx = std::lround((loc[b][1].item<double>() + 1) / 2 * (w - 1));
    for (int64_t s = 0; s < scales; ++s) {
      for (int64_t i = 0; i < patch; ++i) {
        for (int64_t j = 0; j < patch; ++j) {
          EXPECT_NEAR(out[b][s][i][j].item<double>(),
                      LoopPatchPixel(images[b][0], cy, cx, patch << s, 1 << s, i, j), 1e-12)
              << b << " " << s << " " << i << " " << j;
        }
      }
    }
  }
}

// Many glimpses of the same images: row i reading image i / M equals the
// retina of the images repeated M times (the loop test above checks Retina).
TEST(RetinaSource, GlimpsesOfSharedImagesEqualTheRetinaOfCopies) {
  at::manual_seed(6);
  const at::Tensor images = at::rand({2, 2, 13, 10}, at::kDouble);
  const at::Tensor loc = at::rand({6, 2}, at::kDouble) * 2.4 - 1.2;  // some clipped
  const RetinaSource source(images, 3, 3, /*samples=*/3);
  const at::Tensor shared = source.Glimpse(loc);
  const at::Tensor copies = Retina(images.repeat_interleave(3, 0), loc, 3, 3);
  ASSERT_EQ(shared.sizes(), at::IntArrayRef({6, 6, 3, 3}));
  EXPECT_LT((shared - copies).abs().max().item<double>(), 1e-12);
  EXPECT_ERROR_CONTAINS(source.Glimpse(loc.slice(0, 0, 5)),
                        "locations must be [batch * samples, 2] = [6, 2], got [5, 2]");
  EXPECT_ERROR_CONTAINS(RetinaSource(images, 3, 3, 0), "samples must be >= 1, got 0");
  at::Tensor nan_loc = loc.clone();
  nan_loc[4][1] = NAN;
  EXPECT_ERROR_CONTAINS(source.Glimpse(nan_loc),
                        "locations must not be NaN, got NaN in 1 of 6 rows (first: row 4)");
  EXPECT_ERROR_CONTAINS(source.Glimpse(loc.to(at::kLong)),
                        "locations must be floating point, got Long");
  EXPECT_ERROR_CONTAINS(RetinaSource(images.to(at::kLong), 3, 3),
                        "images must be floating point, got Long");
}

TEST(Ram, SeveralTrajectoriesPerImageEqualRepeatedImages) {
  at::manual_seed(7);
  Ram ram(RamOptions().side(40).glimpses(4).scales(3));
  ram->eval();  // the means: both forwards follow the same locations
  const at::Tensor images = at::rand({3, 1, 40, 40});
  const RamImpl::Output shared = ram->forward(images, 4);
  const RamImpl::Output copies = ram->forward(images.repeat_interleave(4, 0));
  ASSERT_EQ(shared.logits.sizes(), at::IntArrayRef({12, 10}));
  EXPECT_TRUE(at::allclose(shared.logits, copies.logits, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(shared.locations, copies.locations, 1e-5, 1e-6));
  EXPECT_ERROR_CONTAINS(ram->forward(images, 0), "samples must be >= 1, got 0");
}

TEST(Ram, Shapes) {
  at::manual_seed(1);
  Ram ram(RamOptions().side(40).glimpses(5).scales(3));
  const RamImpl::Output out = ram->forward(at::rand({6, 1, 40, 40}));
  EXPECT_EQ(out.logits.sizes(), at::IntArrayRef({6, 10}));
  EXPECT_EQ(out.locations.sizes(), at::IntArrayRef({6, 5, 2}));
  EXPECT_EQ(out.log_probs.sizes(), at::IntArrayRef({6, 4}));
  EXPECT_EQ(out.baselines.sizes(), at::IntArrayRef({6, 4}));
  EXPECT_TRUE(out.locations.select(1, 0).eq(0).all().item<bool>());  // l_0: centre
  EXPECT_LE(out.locations.abs().max().item<double>(), 1.0);
  const RamLoss loss = RamLosses(out, at::tensor({0, 1, 2, 3, 4, 5}, at::kLong));
  loss.total.backward();
  // Every head gets a gradient: classifier and core by cross-entropy, the
  // location head by REINFORCE, the baseline head by its squared error.
  for (const auto& p : ram->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();
  }
  ram->eval();
  const RamImpl::Output a = ram->forward(at::ones({2, 1, 40, 40}));
  const RamImpl::Output b = ram->forward(at::ones({2, 1, 40, 40}));
  EXPECT_TRUE(a.locations.equal(b.locations));  // evaluation: the means
}

TEST(Ram, ForwardSampledUsesItsOwnGenerator) {
  at::manual_seed(8);
  Ram ram(RamOptions().side(40).glimpses(4).scales(3).location_std(0.3));
  ram->eval();
  const at::Tensor images = at::rand({3, 1, 40, 40});
  const auto run = [&](uint64_t seed) {
    at::Generator gen = at::detail::createCPUGenerator(seed);
    return ram->forward_sampled(images, 2, gen);
  };
  at::manual_seed(9);
  const at::Tensor before = at::randn({4});
  at::manual_seed(9);
  const RamImpl::Output a = run(5), b = run(5), c = run(6);
  EXPECT_TRUE(at::randn({4}).equal(before));  // the global stream untouched
  EXPECT_TRUE(a.locations.equal(b.locations));
  EXPECT_TRUE(a.logits.equal(b.logits));
  EXPECT_FALSE(a.locations.equal(c.locations));
  const RamImpl::Output means = ram->forward(images, 2);  // evaluation mode: the means
  EXPECT_FALSE(a.locations.equal(means.locations));
  EXPECT_ERROR_CONTAINS(ram->forward_sampled(images, 2, at::Generator()),
                        "forward_sampled needs a generator, got an undefined one");
  // Away from the means by about the policy's std (mean |N(0, 0.3^2)| is
  // 0.24; clipping to the image shrinks some).
  const at::Tensor d = (a.locations - means.locations).slice(1, 1);
  EXPECT_GT(d.abs().mean().item<double>(), 0.1);
  EXPECT_LT(d.abs().mean().item<double>(), 0.3);
}

TEST(MeanProbabilityLogits, LogOfTheMeanProbabilitiesAgainstLoops) {
  at::manual_seed(10);
  const at::Tensor logits = at::randn({6, 4}, at::kDouble) * 3;
  const at::Tensor out = MeanProbabilityLogits(logits, 3);
  ASSERT_EQ(out.sizes(), at::IntArrayRef({2, 4}));
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t k = 0; k < 4; ++k) {
      double mean = 0;
      for (int64_t m = 0; m < 3; ++m) {
        double z = 0;
        for (int64_t c = 0; c < 4; ++c) z += std::exp(logits[b * 3 + m][c].item<double>());
        mean += std::exp(logits[b * 3 + m][k].item<double>()) / z / 3;
      }
      EXPECT_NEAR(out[b][k].item<double>(), std::log(mean), 1e-12);
    }
  }
  EXPECT_ERROR_CONTAINS(MeanProbabilityLogits(logits, 4),
                        "logits must be [B * samples, classes] with samples >= 1, got [6, 4] and "
                        "samples 4");
}

// The policy is the Gaussian; clipping the location to the image is the
// environment's. So the log-probability is of the sample drawn, not of the
// clipped location (which would shrink the score of every clipped sample
// toward the border). With std 5 in [-1, 1] units nearly every sample is
// clipped: the mean log-density of a 2-D Gaussian's own samples is
// -log(2 pi std^2) - 1 = -6.06, while clipped locations, within 2 of the
// mean, would score about -5.1.
TEST(Ram, LogProbabilitiesAreOfTheUnclippedSamples) {
  at::manual_seed(4);
  Ram ram(RamOptions().side(24).glimpses(9).scales(2).location_std(5));
  const RamImpl::Output out = ram->forward(at::rand({512, 1, 24, 24}));
  EXPECT_LE(out.locations.abs().max().item<double>(), 1.0);
  EXPECT_GT(out.locations.abs().eq(1).to(at::kFloat).mean().item<double>(), 0.5);
  const double expected = -std::log(2 * M_PI * 25.0) - 1;
  EXPECT_NEAR(out.log_probs.mean().item<double>(), expected, 0.1);
}

TEST(Ram, PolicyAllTrainsTheCoreThroughReinforce) {
  // The REINFORCE term alone: with policy "head" only the location head
  // gets its gradient; with "all" the core and glimpse networks too.
  for (const std::string policy : {"head", "all"}) {
    at::manual_seed(2);
    Ram ram(RamOptions().side(40).glimpses(4).scales(3).policy(policy));
    const RamImpl::Output out = ram->forward(at::rand({5, 1, 40, 40}));
    ReinforceLoss(out.log_probs, at::tensor({1.0f, 0.0f, 1.0f, 1.0f, 0.0f}), out.baselines)
        .backward();
    EXPECT_GT(ram->location->weight.grad().abs().sum().item<double>(), 0) << policy;
    for (auto* layer : {&ram->core_hidden, &ram->core_glimpse, &ram->glimpse_patch}) {
      const at::Tensor g = (*layer)->weight.grad();
      const double total = g.defined() ? g.abs().sum().item<double>() : 0.0;
      if (policy == "all") {
        EXPECT_GT(total, 0) << policy;
      } else {
        EXPECT_EQ(total, 0) << policy;
      }
    }
  }
}

TEST(Ram, ReinforceWeightScalesOnlyThePolicyTerm) {
  at::manual_seed(3);
  Ram ram(RamOptions().side(40).glimpses(4).scales(3));
  const RamImpl::Output out = ram->forward(at::rand({5, 1, 40, 40}));
  const at::Tensor labels = at::tensor({0, 1, 2, 3, 4}, at::kLong);
  const RamLoss one = RamLosses(out, labels);
  const RamLoss scaled = RamLosses(out, labels, 0.25);
  EXPECT_NE(one.reinforce.item<double>(), 0);
  EXPECT_DOUBLE_EQ(scaled.reinforce.item<double>(), one.reinforce.item<double>());
  EXPECT_NEAR(scaled.total.item<double>(),
              one.classification.item<double>() + 0.25 * one.reinforce.item<double>() +
                  one.baseline.item<double>(),
              1e-5);
  EXPECT_NEAR(one.total.item<double>() - scaled.total.item<double>(),
              0.75 * one.reinforce.item<double>(), 1e-5);
}

// Trajectories of one image share a baseline made of the others' rewards:
// checked against loops over a hand-made output (no network).
TEST(RamLosses, LeaveOneOutBaselineAndLogLikelihoodRewardMatchLoops) {
  const int64_t images = 2, m = 3, steps = 2, n = images * m;
  RamImpl::Output out;
  at::manual_seed(5);
  out.logits = at::randn({n, 4}, at::kDouble);
  out.log_probs = at::randn({n, steps}, at::kDouble);
  out.baselines = at::randn({n, steps}, at::kDouble);
  const at::Tensor labels = at::tensor({0, 1, 2, 3, 0, 1}, at::kLong);
  for (const std::string reward : {"correct", "log_likelihood"}) {
    const RamLoss loss =
        RamLosses(out, labels, RamLossOptions().samples(m).reward(reward).reinforce_weight(0.5));
    std::vector<double> r(n);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t y = labels[i].item<int64_t>();
      if (reward == "correct") {
        r[i] = out.logits[i].argmax().item<int64_t>() == y ? 1.0 : 0.0;
      } else {
        double z = 0;
        for (int64_t c = 0; c < 4; ++c) z += std::exp(out.logits[i][c].item<double>());
        r[i] = out.logits[i][y].item<double>() - std::log(z);
      }
      EXPECT_NEAR(loss.reward[i].item<double>(), r[i], 1e-12) << reward << " " << i;
    }
    double reinforce = 0, baseline = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t first = i / m * m;
      double others = 0;
      for (int64_t j = first; j < first + m; ++j) others += j == i ? 0.0 : r[j];
      others /= double(m - 1);
      for (int64_t t = 0; t < steps; ++t) {
        reinforce -= out.log_probs[i][t].item<double>() * (r[i] - others);
        const double e = out.baselines[i][t].item<double>() - r[i];
        baseline += e * e;  // the learned baseline is still trained
      }
    }
    EXPECT_NEAR(loss.reinforce.item<double>(), reinforce / n, 1e-12) << reward;
    EXPECT_NEAR(loss.baseline.item<double>(), baseline / n, 1e-12) << reward;
    EXPECT_NEAR(loss.total.item<double>(),
                loss.classification.item<double>() + 0.5 * reinforce / n + baseline / n, 1e-12);
  }
  // One trajectory per image: the learned baseline, as before.
  const RamLoss single = RamLosses(out, labels, RamLossOptions());
  EXPECT_NEAR(single.reinforce.item<double>(),
              ReinforceLoss(out.log_probs, single.reward, out.baselines).item<double>(), 1e-15);
  EXPECT_ERROR_CONTAINS(RamLosses(out, labels, RamLossOptions().samples(4)),
                  "samples must be >= 1 and divide the batch (6), got 4");
  EXPECT_ERROR_CONTAINS(RamLosses(out, labels, RamLossOptions().reward("accuracy")),
                  "reward must be correct or log_likelihood, got 'accuracy'");
  EXPECT_ERROR_CONTAINS(RamLosses(out, labels, RamLossOptions().reinforce_weight(NAN)),
                  "reinforce_weight must be finite and >= 0, got nan");
}

TEST(Reinforce, DescentRaisesTheLogProbabilityOfRewardedLocations) {
  // A one-parameter policy mean tanh(theta) and one sampled location per
  // case: rewarded above the baseline -> more likely after a step, below
  // -> less likely.
  const at::Tensor sample = at::tensor({0.4, -0.2}, at::kDouble).view({1, 2});
  for (double reward : {1.0, 0.0}) {
    at::Tensor theta = at::zeros({1, 2}, at::kDouble).requires_grad_(true);
    auto log_prob = [&] { return GaussianLogProb(sample, at::tanh(theta), 0.2); };
    const double before = log_prob().item<double>();
    const at::Tensor loss = ReinforceLoss(log_prob().view({1, 1}), at::tensor({reward}, at::kDouble),
                                          at::full({1, 1}, 0.5, at::kDouble));
    loss.backward();
    {
      at::NoGradGuard no_grad;
      theta.sub_(theta.grad() * 0.01);
    }
    const double after = log_prob().item<double>();
    if (reward > 0.5) {
      EXPECT_GT(after, before);
    } else {
      EXPECT_LT(after, before);
    }
  }
  // The log-density itself: N(x | m, s^2 I) in 2-D.
  const double lp = GaussianLogProb(at::tensor({1.0, 2.0}, at::kDouble).view({1, 2}),
                                    at::tensor({0.5, 2.5}, at::kDouble).view({1, 2}), 0.5)
                        .item<double>();
  EXPECT_NEAR(lp, -0.5 * (0.25 + 0.25) / 0.25 - std::log(2 * M_PI * 0.25), 1e-6);
}

TEST(Reinforce, LearnedBaselineReducesGradientVariance) {
  // Bandit: location l ~ N(mu, 0.5^2) in 1-D, reward 5 + l. Per-sample
  // REINFORCE estimates of d/dmu, without and with a baseline fitted by
  // squared error (as RAM's baseline head is).
  at::manual_seed(2);
  const int64_t n = 4000;
  const double std = 0.5;
  const at::Tensor l = at::randn({n, 1}, at::kDouble) * std;
  const at::Tensor reward = 5 + l.squeeze(1);
  at::Tensor b = at::zeros({1}, at::kDouble).requires_grad_(true);
  for (int step = 0; step < 300; ++step) {
    const at::Tensor mse = (b - reward).pow(2).mean();
    b.mutable_grad() = at::Tensor();
    mse.backward();
    at::NoGradGuard no_grad;
    b.sub_(b.grad() * 0.1);
  }
  EXPECT_NEAR(b.item<double>(), 5.0, 0.1);
  auto estimates = [&](const at::Tensor& baseline) {
    at::Tensor mu = at::zeros({n, 1}, at::kDouble).requires_grad_(true);
    const at::Tensor lp = GaussianLogProb(l, mu, std).view({n, 1});
    (ReinforceLoss(lp, reward, baseline.detach().expand({n, 1})) * double(n)).backward();
    return mu.grad().squeeze(1);  // one estimate per sample
  };
  const at::Tensor without = estimates(at::zeros({1, 1}, at::kDouble));
  const at::Tensor with = estimates(b.view({1, 1}));
  // Same expectation (the true gradient of E[reward] is 1), far less spread.
  EXPECT_NEAR(without.mean().item<double>(), -1.0, 0.5);
  EXPECT_NEAR(with.mean().item<double>(), -1.0, 0.1);
  EXPECT_LT(with.var().item<double>(), 0.1 * without.var().item<double>());
}

// The core state after the first glimpse, computed from the modules.
at::Tensor FirstCoreState(Ram& ram, const at::Tensor& images) {
  const RamOptions& o = ram->options;
  const at::Tensor l = at::zeros({images.size(0), 2});
  const at::Tensor patches =
      Retina(images, l, o.patch(), o.scales()).reshape({images.size(0), -1});
  const at::Tensor what = at::relu(ram->glimpse_patch->forward(patches));
  const at::Tensor where = at::relu(ram->glimpse_location->forward(l));
  const at::Tensor g =
      at::relu(ram->glimpse_what->forward(what) + ram->glimpse_where->forward(where));
  return at::relu(ram->core_glimpse->forward(g));
}

TEST(Ram, IrnnInitialisationKeepsTheSignal) {
  at::manual_seed(3);
  const at::Tensor images = at::rand({64, 1, 40, 40});
  const double input = Retina(images, at::zeros({64, 2}), 12, 3).pow(2).mean().item<double>();
  Ram irnn(RamOptions().side(40).scales(3));
  EXPECT_TRUE(at::equal(irnn->core_hidden->weight, at::eye(256)));
  EXPECT_EQ(irnn->core_hidden->bias.abs().max().item<float>(), 0.0f);
  EXPECT_EQ(irnn->glimpse_patch->bias.abs().max().item<float>(), 0.0f);
  const double w_std = irnn->glimpse_patch->weight.std().item<double>();
  EXPECT_NEAR(w_std, std::sqrt(2.0 / (3 * 144)), 0.05 * w_std);
  // He through three ReLU layers keeps the second moment within 10x of the
  // retina's; LibTorch's default loses most of it (why irnn is the default).
  torch::NoGradGuard no_grad;
  const double kept = FirstCoreState(irnn, images).pow(2).mean().item<double>() / input;
  EXPECT_GT(kept, 0.1);
  EXPECT_LT(kept, 10.0);
  Ram plain(RamOptions().side(40).scales(3).init("default"));
  EXPECT_LT(FirstCoreState(plain, images).pow(2).mean().item<double>() / input, 0.05);
}

TEST(RamErrors, NameTheArgument) {
  EXPECT_ERROR_CONTAINS(Ram(RamOptions().init("xavier")),
                        "init must be irnn or default, got 'xavier'");
  EXPECT_ERROR_CONTAINS(Ram(RamOptions().policy("core")),
                        "policy must be head or all, got 'core'");
  EXPECT_ERROR_CONTAINS(Ram(RamOptions().glimpses(0)), "glimpses must be >= 1, got 0");
  EXPECT_ERROR_CONTAINS(Ram(RamOptions().location_std(0)), "location_std must be > 0, got 0");
  Ram ram(RamOptions().side(40));
  const RamImpl::Output out = ram->forward(at::rand({2, 1, 40, 40}));
  EXPECT_ERROR_CONTAINS(RamLosses(out, at::zeros({2}, at::kLong), -1.0),
                        "reinforce_weight must be finite and >= 0, got -1");
  EXPECT_ERROR_CONTAINS(ram->forward(at::rand({2, 1, 100, 100})),
                        "Ram: images must be [batch, 1, 40, 40], got [2, 1, 100, 100]");
  EXPECT_ERROR_CONTAINS(Retina(at::rand({2, 1, 8, 8}), at::zeros({3, 2}), 2, 2),
                        "locations must be [batch * samples, 2] = [2, 2], got [3, 2]");
}

}  // namespace
}  // namespace baselines
}  // namespace indexgrad
