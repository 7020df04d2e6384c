// The identity experiment's run: the default n = 8 run reaches exactly I in
// the steps docs/identity.md's table gives, writes its CSV, resumes; the paper's
// per-n settings; clear errors.
#include "experiments/identity_run.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <string>

#include "kernels/testing/scratch.h"

namespace indexgrad {
namespace experiments {
namespace {

TEST(RunIdentity, DefaultRunOfEightReachesIdentityAndResumes) {
  IdentityConfig c;
  c.n = 8;
  c.run_dir = testing::ScratchDir("identity8");
  c.resume = false;
  auto r = RunIdentity(c);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->converged);
  EXPECT_EQ(r->steps_to_identity, 250);  // docs/identity.md's table, seed 0, repeat 0
  EXPECT_EQ(r->final_eval_mse, 0.0);
  EXPECT_TRUE(std::ifstream(c.run_dir + "/sparse_n8_r0.csv").good());
  c.resume = true;  // the checkpoint says it stopped at exact I: no more steps
  auto again = RunIdentity(c);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->steps_done, r->steps_done);
  const std::string md = IdentitySummaryMarkdown({"sparse"}, {8}, {*r, *again});
  EXPECT_NE(md.find("| sparse | 8 | 2/2 | 250, 250 | 0 |"), std::string::npos) << md;
}

TEST(RunIdentity, PaperSettingsPerN) {
  IdentityConfig c;
  c.n = 32;
  ApplyIdentityPaperSettings(&c);
  EXPECT_EQ(c.num_local, 2);
  EXPECT_EQ(c.num_global, 8);
  EXPECT_EQ(c.region, 5);
  EXPECT_EQ(c.lr, 0.005);
  EXPECT_EQ(c.steps, 40000);
  c.n = 128;  // beyond the paper's table: its sampling defaults stay
  c.num_local = c.num_global = 4;
  ApplyIdentityPaperSettings(&c);
  EXPECT_EQ(c.num_local, 4);
  EXPECT_EQ(c.region, 7);
  EXPECT_EQ(c.lr, 0.001);
}

TEST(RunIdentity, UnknownMethodIsAClearError) {
  IdentityConfig c;
  c.method = "dense";
  c.run_dir = testing::ScratchDir("identity_bad");
  auto r = RunIdentity(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "method must be sparse or reinforce, got 'dense'");
}

TEST(VarianceFloor, LinearAndGeometricAnneals) {
  IdentityConfig c;
  c.min_sigma = 0.1;
  EXPECT_EQ(VarianceFloor(c, 0), 0.1);  // no anneal
  c.min_sigma_start = 6.4;
  c.anneal_steps = 600;
  // Linear: 6.4 -> 0.1 in equal steps, then 0.1.
  EXPECT_DOUBLE_EQ(VarianceFloor(c, 0), 6.4);
  EXPECT_DOUBLE_EQ(VarianceFloor(c, 300), 3.25);
  EXPECT_DOUBLE_EQ(VarianceFloor(c, 600), 0.1);
  EXPECT_DOUBLE_EQ(VarianceFloor(c, 9000), 0.1);
  // Geometric: a factor 64 over 600 steps is 2x every 100.
  c.geometric_anneal = true;
  EXPECT_DOUBLE_EQ(VarianceFloor(c, 0), 6.4);
  EXPECT_DOUBLE_EQ(VarianceFloor(c, 100), 3.2);
  EXPECT_DOUBLE_EQ(VarianceFloor(c, 300), 0.8);
  EXPECT_DOUBLE_EQ(VarianceFloor(c, 600), 0.1);
  EXPECT_DOUBLE_EQ(VarianceFloor(c, 9000), 0.1);
}

TEST(CheckIdentityConfig, ErrorsNameTheFlagAndTheValue) {
  const auto message = [](const std::function<void(IdentityConfig*)>& change) {
    IdentityConfig c;
    change(&c);
    return std::string(CheckIdentityConfig(c).message());
  };
  EXPECT_EQ(message([](IdentityConfig*) {}), "");
  EXPECT_EQ(message([](IdentityConfig* c) { c->n = 1; }), "--sizes must be integers >= 2, got 1");
  EXPECT_EQ(message([](IdentityConfig* c) { c->batch = 0; }), "--batch must be >= 1, got 0");
  EXPECT_EQ(message([](IdentityConfig* c) { c->lr = NAN; }),
            "--lr must be a finite number > 0, got nan");
  EXPECT_EQ(message([](IdentityConfig* c) { c->tolerance = 1; }),
            "--tolerance must be in [0, 1), got 1");
  EXPECT_EQ(message([](IdentityConfig* c) { c->min_sigma = -0.5; }),
            "--min_sigma must be a finite number >= 0, got -0.5");
  EXPECT_EQ(message([](IdentityConfig* c) { c->min_sigma_start = INFINITY; }),
            "--min_sigma_start must be a finite number (< 0: off), got inf");
  EXPECT_EQ(message([](IdentityConfig* c) { c->rescue_floor = 0; }),
            "--rescue_floor must be a finite number > 0, got 0");
  EXPECT_EQ(message([](IdentityConfig* c) { c->adam_eps = -1e-8; }),
            "--adam_eps must be a finite number >= 0, got -1e-08");
  EXPECT_EQ(message([](IdentityConfig* c) {
              c->geometric_anneal = true;
              c->min_sigma_start = 4;
              c->min_sigma = 0;
            }),
            "--min_sigma_start must be > 0 with --min_sigma > 0 for --anneal_shape=geometric, "
            "got 4");
  EXPECT_EQ(message([](IdentityConfig* c) { c->mean_margin = 0.5; }),
            "--mean_margin must be 0 (off) or in (0, 0.5), got 0.5");
  // RunIdentity refuses before writing anything.
  IdentityConfig c;
  c.eval_every = 0;
  c.run_dir = testing::ScratchDir("identity_bad_config");
  auto r = RunIdentity(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "--eval_every must be >= 1, got 0");
}

}  // namespace
}  // namespace experiments
}  // namespace indexgrad
