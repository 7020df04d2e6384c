// Tests of MaskOperatorFactory: every built-in operator made by name with
// each setting passed through to its options, the Gumbel table / network
// split, the mlp decoder requirement, errors as statuses naming the
// operator, Add() replacing and adding, Names() sorted.
#include "diff_masks/operator_factory.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace indexgrad {
namespace diff_masks {
namespace {

// Settings that differ from every default, so that a setting dropped on the
// way (the operator's own default) shows.
OperatorSettings NonDefaultSettings() {
  OperatorSettings s;
  s.stddev_start = 1.75;
  s.stddev_end = 0.3;
  s.stddev_anneal_fraction = 0.6;
  s.rescue_every = 10;
  s.rescue_steps = 40;
  s.rescue_stddev = 1.25;
  s.rescue_peak = 0.35;
  s.temperature = 0.7;
  s.noise_fraction = 0.55;
  s.lr_end = 2e-3;
  s.point_eps = 1e-12;
  s.gumbel_endgame = true;
  s.gumbel_endgame_lr = 0.02;
  s.gumbel_cosine = true;
  return s;
}

// NonDefaultSettings' anneal, rescue and Adam epsilon, read back from the
// options of an operator of points (GaussianMaskOptions, MlpMaskOptions).
template <typename PointOptions>
void ExpectSharedPointSettings(const PointOptions& o) {
  EXPECT_EQ(o.stddev_start(), 1.75);
  EXPECT_EQ(o.stddev_end(), 0.3);
  EXPECT_EQ(o.anneal_fraction(), 0.6);
  EXPECT_EQ(o.rescue_every(), 10);
  EXPECT_EQ(o.rescue_steps(), 40);
  EXPECT_EQ(o.rescue_stddev(), 1.25);
  EXPECT_EQ(o.rescue_peak(), 0.35);
  EXPECT_EQ(o.adam_eps(), 1e-12);
}

// The message of a failed Make, checked to be an InvalidArgument status.
std::string ErrorOf(const absl::StatusOr<std::shared_ptr<MaskOperator>>& made) {
  EXPECT_FALSE(made.ok());
  EXPECT_EQ(made.status().code(), absl::StatusCode::kInvalidArgument) << made.status();
  return std::string(made.status().message());
}

TEST(MaskOperatorFactory, GaussianGetsEverySetting) {
  const OperatorSettings s = NonDefaultSettings();
  auto made = MaskOperatorFactory().Make("gaussian", /*height=*/6, /*width=*/9, /*k=*/4, s);
  ASSERT_TRUE(made.ok()) << made.status();
  auto* g = dynamic_cast<GaussianMaskOperatorImpl*>(made->get());
  ASSERT_NE(g, nullptr);
  const GaussianMaskOptions& o = g->options;
  EXPECT_EQ(o.height(), 6);
  EXPECT_EQ(o.width(), 9);
  EXPECT_EQ(o.k(), 4);
  ExpectSharedPointSettings(o);
  EXPECT_EQ(o.lr_end(), 2e-3);
  EXPECT_EQ(g->AdamEpsilon(), 1e-12);
  EXPECT_EQ(g->points.sizes(), (at::IntArrayRef{4, 2}));
  // Half of anneal_fraction of the steps: the geometric mean of the ends.
  g->SetProgress(/*step=*/30, /*total=*/100);
  EXPECT_NEAR(g->stddev(), std::sqrt(1.75 * 0.3), 1e-12);
}

TEST(MaskOperatorFactory, GumbelIsTheTableWithEndgameAndCosine) {
  OperatorSettings s = NonDefaultSettings();
  auto made = MaskOperatorFactory().Make("gumbel", 6, 10, 3, s);
  ASSERT_TRUE(made.ok()) << made.status();
  auto* g = dynamic_cast<GumbelMaskOperatorImpl*>(made->get());
  ASSERT_NE(g, nullptr);
  const GumbelMaskOptions& o = g->options;
  EXPECT_EQ(o.height(), 6);
  EXPECT_EQ(o.width(), 10);
  EXPECT_EQ(o.k(), 3);
  EXPECT_FALSE(o.network());
  EXPECT_FALSE(o.clamp());
  EXPECT_EQ(o.temperature(), 0.7);
  EXPECT_EQ(o.noise_fraction(), 0.55);
  EXPECT_TRUE(o.endgame());
  EXPECT_EQ(o.endgame_lr(), 0.02);
  EXPECT_TRUE(o.cosine_lr());
  EXPECT_EQ(g->logits.sizes(), (at::IntArrayRef{3, 60}));
  EXPECT_TRUE(g->network.is_empty());
  // Both switches off pass through as off.
  s.gumbel_endgame = false;
  s.gumbel_cosine = false;
  auto plain = MaskOperatorFactory().Make("gumbel", 6, 10, 3, s);
  ASSERT_TRUE(plain.ok()) << plain.status();
  auto* p = dynamic_cast<GumbelMaskOperatorImpl*>(plain->get());
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(p->options.endgame());
  EXPECT_FALSE(p->options.cosine_lr());
}

TEST(MaskOperatorFactory, GumbelNetIsTheClampedNetworkWithoutEndgameOrCosine) {
  // The table's endgame and cosine settings on: the network takes neither.
  const OperatorSettings s = NonDefaultSettings();
  auto made = MaskOperatorFactory().Make("gumbel_net", 8, 12, 5, s);
  ASSERT_TRUE(made.ok()) << made.status();
  auto* g = dynamic_cast<GumbelMaskOperatorImpl*>(made->get());
  ASSERT_NE(g, nullptr);
  const GumbelMaskOptions& o = g->options;
  EXPECT_EQ(o.height(), 8);
  EXPECT_EQ(o.width(), 12);
  EXPECT_EQ(o.k(), 5);
  EXPECT_TRUE(o.network());
  EXPECT_TRUE(o.clamp());
  EXPECT_FALSE(o.endgame());
  EXPECT_FALSE(o.cosine_lr());
  EXPECT_EQ(o.temperature(), 0.7);
  EXPECT_EQ(o.noise_fraction(), 0.55);
  EXPECT_FALSE(g->network.is_empty());
  EXPECT_FALSE(g->logits.defined());
  EXPECT_EQ(g->Logits().sizes(), (at::IntArrayRef{5, 96}));
  // Clamped: a mask in [0, 1] even with 5 channels on 96 pixels.
  const at::Tensor mask = g->Mask();
  EXPECT_EQ(mask.sizes(), (at::IntArrayRef{8, 12}));
  EXPECT_LE(mask.max().item<double>(), 1.0);
  EXPECT_GE(mask.min().item<double>(), 0.0);
}

TEST(MaskOperatorFactory, MlpGetsItsSettingsAndTheDecoder) {
  OperatorSettings s = NonDefaultSettings();  // stddevs within [0.15, 2] of an 8 x 8 decoder
  s.decoder = MaskDecoder(MaskDecoderOptions(8, 8).hidden(8).blocks(0));
  auto made = MaskOperatorFactory().Make("mlp", 8, 8, 3, s);
  ASSERT_TRUE(made.ok()) << made.status();
  auto* m = dynamic_cast<MlpMaskOperatorImpl*>(made->get());
  ASSERT_NE(m, nullptr);
  const MlpMaskOptions& o = m->options;
  EXPECT_EQ(o.height(), 8);
  EXPECT_EQ(o.width(), 8);
  EXPECT_EQ(o.k(), 3);
  ExpectSharedPointSettings(o);
  EXPECT_EQ(m->stddev(), 1.75);
  EXPECT_EQ(m->decoder.get(), s.decoder.get());  // the same decoder, not a copy
  // Settings the decoder cannot render are the operator's error.
  s.stddev_start = 5;
  const std::string wide = ErrorOf(MaskOperatorFactory().Make("mlp", 8, 8, 3, s));
  EXPECT_NE(wide.find("MlpMaskOperator: stddev_start and stddev_end must be within the "
                      "decoder's trained range [0.15, 2]"),
            std::string::npos)
      << wide;
  // And a decoder of another size.
  const std::string size = ErrorOf(MaskOperatorFactory().Make("mlp", 8, 12, 3, s));
  EXPECT_NE(size.find("the decoder renders 8 x 8 masks, the operator was asked for 8 x 12"),
            std::string::npos)
      << size;
}

TEST(MaskOperatorFactory, MlpWithoutADecoderNamesTheSetting) {
  const std::string message = ErrorOf(MaskOperatorFactory().Make("mlp", 8, 8, 3, OperatorSettings()));
  EXPECT_NE(message.find("OperatorSettings::decoder"), std::string::npos) << message;
}

TEST(MaskOperatorFactory, BadSettingsAreStatusesFromTheOperator) {
  OperatorSettings s;
  s.lr_end = -1;
  EXPECT_NE(ErrorOf(MaskOperatorFactory().Make("gaussian", 8, 8, 2, s))
                .find("GaussianMaskOperator: lr_end must be a finite number >= 0"),
            std::string::npos);
  s = OperatorSettings();
  s.temperature = 0;
  for (const char* name : {"gumbel", "gumbel_net"}) {
    EXPECT_NE(ErrorOf(MaskOperatorFactory().Make(name, 8, 8, 2, s))
                  .find("GumbelMaskOperator: temperature must be > 0, got 0"),
              std::string::npos)
        << name;
  }
  s = OperatorSettings();
  s.point_eps = -1;
  EXPECT_NE(ErrorOf(MaskOperatorFactory().Make("gaussian", 8, 8, 2, s))
                .find("adam_eps must be a finite number >= 0, got -1"),
            std::string::npos);
}

TEST(MaskOperatorFactory, UnknownNamesListTheKnownOnes) {
  MaskOperatorFactory factory;
  EXPECT_FALSE(factory.Has("gauss"));
  EXPECT_EQ(ErrorOf(factory.Make("gauss", 8, 8, 2, OperatorSettings())),
            "unknown mask operator 'gauss' (known: gaussian, gumbel, gumbel_net, mlp)");
  factory.Add("zeta", [](int64_t h, int64_t w, int64_t k, const OperatorSettings&) {
    return std::shared_ptr<MaskOperator>(GaussianMaskOperator(GaussianMaskOptions(h, w, k)).ptr());
  });
  EXPECT_EQ(ErrorOf(factory.Make("", 8, 8, 2, OperatorSettings())),
            "unknown mask operator '' (known: gaussian, gumbel, gumbel_net, mlp, zeta)");
}

TEST(MaskOperatorFactory, AddReplacesOrAddsAndNamesStaySorted) {
  MaskOperatorFactory factory;
  EXPECT_EQ(factory.Names(), (std::vector<std::string>{"gaussian", "gumbel", "gumbel_net", "mlp"}));
  // A new maker gets the size and the settings as given.
  int64_t seen_h = 0, seen_w = 0, seen_k = 0;
  double seen_temperature = 0;
  factory.Add("aardvark", [&](int64_t h, int64_t w, int64_t k, const OperatorSettings& s) {
    seen_h = h;
    seen_w = w;
    seen_k = k;
    seen_temperature = s.temperature;
    return std::shared_ptr<MaskOperator>(GumbelMaskOperator(GumbelMaskOptions(h, w, k)).ptr());
  });
  OperatorSettings s;
  s.temperature = 0.9;
  auto made = factory.Make("aardvark", 5, 7, 2, s);
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(seen_h, 5);
  EXPECT_EQ(seen_w, 7);
  EXPECT_EQ(seen_k, 2);
  EXPECT_EQ(seen_temperature, 0.9);
  EXPECT_TRUE(factory.Has("aardvark"));
  EXPECT_EQ(factory.Names(),
            (std::vector<std::string>{"aardvark", "gaussian", "gumbel", "gumbel_net", "mlp"}));
  // Replacing a built-in: the name now makes the new operator; no duplicate.
  factory.Add("gaussian", [](int64_t h, int64_t w, int64_t k, const OperatorSettings&) {
    return std::shared_ptr<MaskOperator>(GumbelMaskOperator(GumbelMaskOptions(h, w, k)).ptr());
  });
  auto replaced = factory.Make("gaussian", 4, 4, 2, OperatorSettings());
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_NE(dynamic_cast<GumbelMaskOperatorImpl*>(replaced->get()), nullptr);
  EXPECT_EQ(dynamic_cast<GaussianMaskOperatorImpl*>(replaced->get()), nullptr);
  EXPECT_EQ(factory.Names().size(), 5u);
  // A maker's TORCH_CHECK comes back as a status carrying its message.
  factory.Add("picky", [](int64_t, int64_t, int64_t k, const OperatorSettings&)
                  -> std::shared_ptr<MaskOperator> {
    TORCH_CHECK(k == 1, "Picky: k must be 1, got ", k);
    return nullptr;
  });
  const std::string picky = ErrorOf(factory.Make("picky", 4, 4, 3, OperatorSettings()));
  EXPECT_NE(picky.find("Picky: k must be 1, got 3"), std::string::npos) << picky;
  // Another factory is unaffected.
  EXPECT_FALSE(MaskOperatorFactory().Has("aardvark"));
}

}  // namespace
}  // namespace diff_masks
}  // namespace indexgrad
